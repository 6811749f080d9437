//! A service account's JWT for `POST /iam/v1/tokens`, signed (PS256) with the private key of a
//! Yandex key file such as the gateway's bootstrap key file.
//!
//! The JWT: header `{"typ": "JWT", "alg": "PS256", "kid": <key id>}`, claims `iss` the service
//! account, `aud` the audience, `iat` now, `exp` ten minutes later.

use serde_json::{Value, json};
use wif_gateway::testkit::{Jwt, KeyKind, TestKey};

/// The JWT of the key in `key_file` for `audience` (one of `[iam] token_audiences`, by default
/// `{public_url}/iam/v1/tokens`).
pub fn sign(key_file: &str, audience: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let file: Value = serde_json::from_str(&text).map_err(|e| format!("{key_file}: {e}"))?;
    let field = |name: &str| {
        file[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{key_file} has no {name}"))
    };
    let (id, account, private_key) = (
        field("id")?,
        field("service_account_id")?,
        field("private_key")?,
    );
    // PEM readers skip the Yandex line before the PEM block.
    let block = pem::parse(&private_key).map_err(|e| format!("private_key: {e}"))?;
    let key = TestKey::from_pkcs8(KeyKind::Ps256, block.contents(), &id)
        .map_err(|e| format!("private_key is not an RSA PKCS#8 key: {e}"))?;
    let now = wif_gateway::time::now_unix();
    Ok(Jwt::new(
        &json!({"typ": "JWT", "alg": "PS256", "kid": id}),
        &json!({"iss": account, "aud": audience, "iat": now, "exp": now + 600}),
    )
    .sign(&key))
}
