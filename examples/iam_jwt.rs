//! Prints a service account's JWT for `POST /iam/v1/tokens`, signed (PS256) with the private
//! key of a Yandex key file such as the gateway's bootstrap key file (used by
//! `scripts/schemathesis.sh`).
//!
//! ```sh
//! cargo run --example iam_jwt -- KEY_FILE AUDIENCE
//! # AUDIENCE: one of [iam] token_audiences, by default {public_url}/iam/v1/tokens
//! ```
//!
//! The JWT: header `{"typ": "JWT", "alg": "PS256", "kid": <key id>}`, claims `iss` the service
//! account, `aud` AUDIENCE, `iat` now, `exp` ten minutes later.

#[path = "common/admin_jwt.rs"]
mod admin_jwt;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key_file, audience] = args.as_slice() else {
        return Err("usage: iam_jwt KEY_FILE AUDIENCE".into());
    };
    println!("{}", admin_jwt::sign(key_file, audience)?);
    Ok(())
}
