//! The gateway's own signing keys and the access tokens it mints.
//!
//! Keys are PKCS#8 PEM files (`wif-gateway keygen` writes them): ES256 (P-256) by default, EdDSA
//! (Ed25519) or RS256 (RSA ≥ 2048) by choice; the algorithm follows from the key. Each key's `kid`
//! is its RFC 7638 JWK thumbprint, so it never needs configuring and never collides.
//!
//! Minted tokens are RFC 9068 JWT access tokens (`typ: at+jwt`) with `iss`, `sub` (service
//! account), `aud`, `iat`, `nbf`, `exp`, `jti`, `client_id` (federation) and `act` (RFC 8693 §4.1:
//! the external subject that acted). Downstream services verify them offline against
//! `/.well-known/jwks.json`, which publishes every configured key so that rotation never breaks a
//! verifier.

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};

/// Algorithms the gateway signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlgorithm {
    #[default]
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::RS256 => "RS256",
        }
    }

    /// Parses `ES256`, `EdDSA` or `RS256`, case-insensitively (a CLI convenience).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::ES256, Self::EdDSA, Self::RS256]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors loading, generating or using a signing key.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{0}")]
    Key(String),
    #[error("signing failed")]
    Sign,
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// A private signing key with its public JWK and thumbprint `kid`.
pub struct SigningKey {
    alg: SigningAlgorithm,
    kid: String,
    pair: Pair,
    /// The public JWK, with `kid`, `alg` and `use: sig`, as published.
    public_jwk: Value,
    /// `BASE64URL({"alg":…,"typ":"at+jwt","kid":…})`, computed once.
    access_token_header: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 thumbprint of a public JWK: SHA-256 over the required members in lexicographic
/// order, without white space, base64url-encoded.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        _ => return None,
    };
    Some(b64(
        digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()
    ))
}

impl SigningKey {
    /// Loads a PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`) and infers its algorithm.
    pub fn from_pem(pem_text: &str) -> Result<SigningKey, SigningError> {
        let block =
            pem::parse(pem_text).map_err(|e| SigningError::Key(format!("not a PEM file: {e}")))?;
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8(block.contents()),
            "EC PRIVATE KEY" | "RSA PRIVATE KEY" => Err(SigningError::Key(format!(
                "{} is not PKCS#8; convert it with `openssl pkcs8 -topk8 -nocrypt` or create one with `wif-gateway keygen`",
                block.tag()
            ))),
            other => Err(SigningError::Key(format!(
                "PEM block {other:?} is not a private key"
            ))),
        }
    }

    /// Loads a key from a PEM file.
    pub fn from_file(path: &Path) -> Result<SigningKey, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(&text).map_err(|e| SigningError::Key(format!("{}: {e}", path.display())))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, SigningError> {
        let pair = if let Ok(p) =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
        {
            Pair::Es256(p)
        } else if let Ok(p) = Ed25519KeyPair::from_pkcs8(der) {
            Pair::EdDsa(p)
        } else if let Ok(p) = RsaKeyPair::from_pkcs8(der) {
            if p.public_modulus_len() < 256 {
                return Err(SigningError::Key(
                    "RSA keys must be at least 2048 bits".into(),
                ));
            }
            Pair::Rs256(p)
        } else {
            return Err(SigningError::Key(
                "unsupported private key: expected a P-256, Ed25519 or RSA PKCS#8 key".into(),
            ));
        };
        Ok(Self::from_pair(pair))
    }

    fn from_pair(pair: Pair) -> SigningKey {
        let (alg, mut jwk) = match &pair {
            Pair::Es256(p) => {
                let point = p.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                (
                    SigningAlgorithm::ES256,
                    json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}),
                )
            }
            Pair::EdDsa(p) => (
                SigningAlgorithm::EdDSA,
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(p.public_key().as_ref())}),
            ),
            Pair::Rs256(p) => {
                let public = p.public_key();
                (
                    SigningAlgorithm::RS256,
                    json!({
                        "kty": "RSA",
                        "n": b64(public.modulus().big_endian_without_leading_zero()),
                        "e": b64(public.exponent().big_endian_without_leading_zero()),
                    }),
                )
            }
        };
        let kid = thumbprint(&jwk).unwrap_or_default();
        jwk["kid"] = kid.clone().into();
        jwk["alg"] = alg.as_str().into();
        jwk["use"] = "sig".into();
        let header = json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
        SigningKey {
            alg,
            access_token_header: b64(header.to_string().as_bytes()),
            kid,
            pair,
            public_jwk: jwk,
        }
    }

    /// Generates a new key and returns it with its PKCS#8 PEM.
    pub fn generate(alg: SigningAlgorithm) -> Result<(SigningKey, String), SigningError> {
        let rng = SystemRandom::new();
        let fail = |_| SigningError::Key("key generation failed".into());
        let der: Vec<u8> = match alg {
            SigningAlgorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec()
            }
            // PKCS#8 v1: v2 documents are not understood by every JWT library (crates.md).
            SigningAlgorithm::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            SigningAlgorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(fail)?
                .as_der()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        };
        let pem_text = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
        Ok((Self::from_pkcs8(&der)?, pem_text))
    }

    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Signs `message` with this key's algorithm (JOSE signature encoding: r‖s for ECDSA).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match &self.pair {
            Pair::Es256(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::Sign),
            Pair::EdDsa(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Rs256(p) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| SigningError::Sign)?;
                Ok(sig)
            }
        }
    }

    /// Builds a compact JWS of `claims` with the given header (already base64url-encoded).
    pub fn sign_compact(
        &self,
        header_b64: &str,
        claims: &impl Serialize,
    ) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SigningError::Sign)?;
        self.sign_compact_payload(header_b64, &payload)
    }

    /// Builds a compact JWS of a JSON payload with the given header (already base64url-encoded).
    fn sign_compact_payload(
        &self,
        header_b64: &str,
        payload: &[u8],
    ) -> Result<String, SigningError> {
        let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let sig = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut token);
        Ok(token)
    }

    /// `BASE64URL` of a plain JWT header for this key (`typ: JWT`), e.g. for ID tokens.
    pub fn jwt_header(&self) -> String {
        b64(
            json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid})
                .to_string()
                .as_bytes(),
        )
    }
}

/// What to mint a token for.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    pub service_account_id: &'a str,
    pub federation_id: &'a str,
    pub external_issuer: &'a str,
    pub external_subject: &'a str,
    /// `aud` of the token: the RFC 8707 target the exchange asked for and was allowed. `None`:
    /// [`Minter::audience`].
    pub audience: Option<&'a str>,
}

/// A minted access token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The JWT. Never log it: audit records [`IssuedToken::sha256`] instead.
    pub access_token: String,
    /// Seconds until expiry.
    pub expires_in: i64,
    pub jti: String,
    pub kid: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .finish()
    }
}

impl IssuedToken {
    /// Hex SHA-256 of the token: lets an audit trail identify a token without holding it.
    pub fn sha256(&self) -> String {
        token_sha256(&self.access_token)
    }
}

/// Hex SHA-256 of a token, as the audit log names tokens.
pub fn token_sha256(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Serialized by hand ([`AccessClaims::to_json`]); the tests compare it with serde_json's output.
#[cfg_attr(test, derive(Serialize))]
struct Actor<'a> {
    iss: &'a str,
    sub: &'a str,
    /// Who acted for the actor, when it was acted for itself (RFC 8693 §4.1: a chain nests).
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    act: Option<&'a Value>,
}

#[cfg_attr(test, derive(Serialize))]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    client_id: &'a str,
    /// Absent when the service account acts as itself (an authorized key's JWT).
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    act: Option<Actor<'a>>,
}

impl AccessClaims<'_> {
    /// The claims as JSON, written by hand: what serde_json writes for them, byte for byte
    /// (tested), without its scan of every string. A nested `act` (rare) goes through serde_json.
    fn to_json(&self) -> Vec<u8> {
        use crate::json::{member, member_i64, write_string};
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(br#"{"iss":"#);
        write_string(&mut out, self.iss);
        member(&mut out, "sub", Some(self.sub));
        member(&mut out, "aud", Some(self.aud));
        member_i64(&mut out, "iat", self.iat);
        member_i64(&mut out, "nbf", self.nbf);
        member_i64(&mut out, "exp", self.exp);
        member(&mut out, "jti", Some(self.jti));
        member(&mut out, "client_id", Some(self.client_id));
        if let Some(act) = &self.act {
            out.extend_from_slice(br#","act":{"iss":"#);
            write_string(&mut out, act.iss);
            member(&mut out, "sub", Some(act.sub));
            if let Some(nested) = act.act {
                out.extend_from_slice(br#","act":"#);
                // A Value always serializes.
                let _ = serde_json::to_writer(&mut out, nested);
            }
            out.push(b'}');
        }
        out.push(b'}');
        out
    }
}

/// The hard ceiling on access-token lifetime (Yandex IAM tokens live at most 12 h).
pub const MAX_TOKEN_LIFETIME: i64 = 12 * 3600;

/// Mints access tokens with the active key; publishes all keys.
#[derive(Debug)]
pub struct Minter {
    /// `iss` of minted tokens: the gateway's public URL.
    pub issuer: String,
    /// `aud` of minted tokens that name no target ([`MintRequest::audience`]).
    pub audience: String,
    /// Lifetime of minted tokens in seconds, at most [`MAX_TOKEN_LIFETIME`].
    pub lifetime: i64,
    active: SigningKey,
    /// Keys published but not used for signing: the next key (pre-published so that verifiers
    /// know it before it signs) and retiring keys (still verifying tokens already issued).
    published: Vec<SigningKey>,
}

impl Minter {
    pub fn new(
        issuer: String,
        audience: String,
        lifetime: i64,
        active: SigningKey,
        published: Vec<SigningKey>,
    ) -> Minter {
        Minter {
            issuer,
            audience,
            lifetime: lifetime.clamp(1, MAX_TOKEN_LIFETIME),
            active,
            published,
        }
    }

    pub fn active_key(&self) -> &SigningKey {
        &self.active
    }

    /// The active key's id and the ids of the published-only keys.
    pub fn key_ids(&self) -> (String, Vec<String>) {
        (
            self.active.kid.clone(),
            self.published.iter().map(|k| k.kid.clone()).collect(),
        )
    }

    /// The published-only keys (next and retiring).
    pub fn published_keys(&self) -> &[SigningKey] {
        &self.published
    }

    /// The public JWKS document of every key (active first).
    pub fn jwks(&self) -> Value {
        let mut keys = vec![self.active.public_jwk.clone()];
        keys.extend(
            self.published
                .iter()
                .filter(|k| k.kid != self.active.kid)
                .map(|k| k.public_jwk.clone()),
        );
        json!({ "keys": keys })
    }

    /// Mints an access token valid from `now` for [`Minter::lifetime`] seconds.
    pub fn mint(&self, req: &MintRequest<'_>, now: i64) -> Result<IssuedToken, SigningError> {
        self.issue(
            req.service_account_id,
            req.federation_id,
            req.audience.unwrap_or(&self.audience),
            Some(Actor {
                iss: req.external_issuer,
                sub: req.external_subject,
                act: None,
            }),
            self.lifetime,
            now,
        )
    }

    /// Mints an IAM token for `service_account_id` on behalf of `caller`, another service
    /// account of this gateway (`IamTokenService.CreateForServiceAccount`): `act` names the
    /// caller, with the caller's own `act` nested inside (RFC 8693 §4.1), `client_id` is the
    /// caller, and the token expires at `not_after` if that comes before its usual lifetime.
    pub fn mint_impersonated(
        &self,
        service_account_id: &str,
        caller: &str,
        caller_act: Option<&Value>,
        not_after: i64,
        now: i64,
    ) -> Result<IssuedToken, SigningError> {
        let lifetime = self.lifetime.min(not_after.saturating_sub(now)).max(1);
        self.issue(
            service_account_id,
            caller,
            &self.audience,
            Some(Actor {
                iss: &self.issuer,
                sub: caller,
                act: caller_act,
            }),
            lifetime,
            now,
        )
    }

    /// Mints an access token (an IAM token) for a service account that authenticated with its
    /// own authorized key `key_id` (`POST /iam/v1/tokens`): `client_id` is the key id and there
    /// is no `act`, since nobody acts for the account.
    pub fn mint_for_key(
        &self,
        service_account_id: &str,
        key_id: &str,
        now: i64,
    ) -> Result<IssuedToken, SigningError> {
        self.issue(
            service_account_id,
            key_id,
            &self.audience,
            None,
            self.lifetime,
            now,
        )
    }

    fn issue(
        &self,
        sub: &str,
        client_id: &str,
        aud: &str,
        act: Option<Actor<'_>>,
        lifetime: i64,
        now: i64,
    ) -> Result<IssuedToken, SigningError> {
        let mut raw = [0u8; 16];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| SigningError::Sign)?;
        let jti = b64(&raw);
        let claims = AccessClaims {
            iss: &self.issuer,
            sub,
            aud,
            iat: now,
            nbf: now,
            exp: now + lifetime,
            jti: &jti,
            client_id,
            act,
        };
        let access_token = self
            .active
            .sign_compact_payload(&self.active.access_token_header, &claims.to_json())?;
        Ok(IssuedToken {
            access_token,
            expires_in: lifetime,
            jti,
            kid: self.active.kid.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::issuer_keys::{Algorithm, KeySet};

    #[test]
    fn claims_are_written_as_serde_json_writes_them() {
        let odd = "q\"b\\s/\n\u{1f}\u{7f}é\u{2028}😀";
        let nested = json!({"iss": "https://gw.example", "sub": odd, "act": {"sub": "x"}});
        for act in [
            None,
            Some(Actor {
                iss: "https://issuer.example",
                sub: "repo:org/app:ref:refs/heads/main",
                act: None,
            }),
            Some(Actor {
                iss: odd,
                sub: "",
                act: Some(&nested),
            }),
        ] {
            for (text, now) in [("plain", 1_795_386_292), (odd, -5)] {
                let claims = AccessClaims {
                    iss: text,
                    sub: "aje0sa",
                    aud: text,
                    iat: now,
                    nbf: now,
                    exp: i64::MAX,
                    jti: "7WNwZLy6MqKf-X3VMtSYUA",
                    client_id: text,
                    act: act.as_ref().map(|a| Actor { ..*a }),
                };
                let theirs = serde_json::to_vec(&claims).expect("serializes");
                assert_eq!(
                    String::from_utf8(claims.to_json()).expect("UTF-8"),
                    String::from_utf8(theirs).expect("UTF-8")
                );
            }
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn every_algorithm_round_trips_through_pem_and_verifies() {
        for alg in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
        ] {
            let (key, pem_text) = SigningKey::generate(alg).expect("generate");
            let again = SigningKey::from_pem(&pem_text).expect("reload");
            assert_eq!(again.kid(), key.kid(), "{alg}");
            assert_eq!(again.alg(), alg);
            let minter = Minter::new(
                "https://gw".into(),
                "https://gw".into(),
                3600,
                again,
                vec![],
            );
            let token = minter
                .mint(
                    &MintRequest {
                        service_account_id: "sa",
                        federation_id: "fed",
                        external_issuer: "https://i",
                        external_subject: "s",
                        audience: None,
                    },
                    1_000,
                )
                .expect("mint");
            let jwt = read_and_verify(&token.access_token, &minter.jwks());
            assert_eq!(jwt.alg, Algorithm::parse(alg.as_str()).expect("alg"));
            assert_eq!(jwt.claims.sub.as_deref(), Some("sa"));
            assert_eq!(jwt.claims.exp.map(|e| e.0), Some(4_600));
        }
    }

    #[test]
    fn a_compact_jws_of_any_claims_carries_them_under_the_header_and_verifies() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::ES256).expect("generate");
        let header = key.jwt_header();
        let token = key
            .sign_compact(&header, &json!({"sub": "s", "nonce": "n\"1"}))
            .expect("signs");
        let (head, _) = token.split_once('.').expect("three parts");
        assert_eq!(head, header);
        let jwt = read_and_verify(&token, &json!({"keys": [key.public_jwk()]}));
        assert_eq!(jwt.kid.as_deref(), Some(key.kid()));
        assert_eq!(jwt.claims.sub.as_deref(), Some("s"));
    }

    /// Reads `token` and verifies its signature against `jwks`.
    fn read_and_verify<'t>(
        token: &'t str,
        jwks: &Value,
    ) -> crate::exchange::jwt::UnverifiedJwt<'t> {
        let keys = KeySet::from_jwks_json(jwks.to_string().as_bytes()).expect("jwks");
        let jwt = crate::exchange::jwt::read(token).expect("read");
        keys.verify(
            jwt.kid.as_deref(),
            jwt.alg,
            jwt.signing_input,
            &jwt.signature,
        )
        .expect("verifies");
        jwt
    }

    #[test]
    fn refuses_non_pkcs8_and_garbage() {
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n";
        assert!(SigningKey::from_pem(sec1).is_err_and(|e| e.to_string().contains("PKCS#8")));
        assert!(SigningKey::from_pem("hello").is_err());
        let cert = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3]));
        assert!(SigningKey::from_pem(&cert).is_err());
    }

    #[test]
    fn tokens_for_an_authorized_key_name_the_key_and_no_actor() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::ES256).expect("gen");
        let minter = Minter::new("https://gw".into(), "https://gw".into(), 600, key, vec![]);
        let token = minter.mint_for_key("sa-1", "key-1", 1_000).expect("mint");
        let jwt = crate::exchange::jwt::read(&token.access_token).expect("read");
        assert_eq!(jwt.claims.sub.as_deref(), Some("sa-1"));
        assert_eq!(jwt.claims.exp.map(|e| e.0), Some(1_600));
        let payload = token
            .access_token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .expect("payload");
        assert_eq!(payload["client_id"], "key-1");
        assert!(payload.get("act").is_none(), "{payload}");
        assert_eq!(token.expires_in, 600);
    }

    #[test]
    fn impersonation_tokens_nest_the_callers_chain_and_never_outlive_the_caller() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::ES256).expect("gen");
        let minter = Minter::new("https://gw".into(), "https://gw".into(), 600, key, vec![]);
        let payload = |token: &IssuedToken| {
            token
                .access_token
                .split('.')
                .nth(1)
                .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
                .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
                .expect("payload")
        };
        let external = json!({"iss": "https://gitlab.example", "sub": "project_path:g/p"});
        let token = minter
            .mint_impersonated("sa-target", "sa-caller", Some(&external), 1_300, 1_000)
            .expect("mint");
        let claims = payload(&token);
        assert_eq!(claims["sub"], "sa-target");
        assert_eq!(claims["client_id"], "sa-caller");
        assert_eq!(
            claims["act"],
            json!({"iss": "https://gw", "sub": "sa-caller", "act": external})
        );
        assert_eq!(
            (claims["exp"].as_i64(), token.expires_in),
            (Some(1_300), 300)
        );
        // A caller whose token outlives the usual lifetime gets the usual lifetime.
        let token = minter
            .mint_impersonated("sa-target", "sa-caller", None, 9_000, 1_000)
            .expect("mint");
        let claims = payload(&token);
        assert_eq!(
            claims["act"],
            json!({"iss": "https://gw", "sub": "sa-caller"})
        );
        assert_eq!(
            (claims["exp"].as_i64(), token.expires_in),
            (Some(1_600), 600)
        );
    }

    #[test]
    fn lifetime_is_capped_at_twelve_hours() {
        let (key, _) = SigningKey::generate(SigningAlgorithm::ES256).expect("gen");
        let minter = Minter::new("i".into(), "a".into(), 100_000, key, vec![]);
        assert_eq!(minter.lifetime, MAX_TOKEN_LIFETIME);
    }
}
