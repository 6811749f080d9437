//! The test kit: forges caller tokens the way an OIDC issuer (or an attacker) would.
//!
//! It exists only for the tests, benchmarks and examples: the library compiles it for its own
//! unit tests and when the `testkit` feature is on, which the package's dev-dependency on itself
//! turns on for integration tests, benchmarks and examples. The release binary never contains it.
//!
//! * [`b64url`], [`b64url_decode`], [`segments`] and [`decode_payload`]: the JOSE encodings, and
//!   reading tokens without verifying them.
//! * [`TestKey`]: a signing key of one of the kinds issuers use ([`KeyKind`]: RS256, PS256,
//!   ES256, ES384, EdDSA) with its public JWK; [`jwks`] renders a key set.
//! * [`Jwt`]: a token before its signature, from JSON values, raw bytes or already-encoded
//!   segments, finished with a key, another RSA padding, an HMAC, any given signature bytes, or
//!   none.
//! * [`claims`] and [`edited`]: the claims of a normal valid token, and one thing changed in them.
//!
//! Tokens are assembled here, independently of the gateway's own JWT code ([`crate::jwt`],
//! [`crate::keys`], [`crate::signing`]); the signatures come straight from aws-lc-rs.
//!
//! A kit function that fails panics with the step that failed: its callers are tests and
//! tools, which would stop there anyway. The one exception reads input from outside:
//! [`TestKey::from_pkcs8`] returns a `Result`.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test-only code: a failure here is a failed test or tool run, reported at its cause"
)]

use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::error::KeyRejected;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
    RsaEncoding, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// Base64url without padding, as JOSE uses everywhere.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
///
/// # Panics
/// If `text` is not canonical unpadded base64url.
pub fn b64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64url ({e}): {text}"))
}

/// The `(header, payload, signature)` segments of a compact JWS, still encoded.
///
/// # Panics
/// If `token` does not have exactly three segments.
pub fn segments(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => panic!("not three segments: {token}"),
    }
}

/// The payload of a compact JWS as JSON, read without verifying anything (surrounding white
/// space, as in a token file, is ignored).
///
/// # Panics
/// If the token has no second segment, or it is not base64url-encoded JSON.
pub fn decode_payload(token: &str) -> Value {
    let segment = token
        .trim()
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("no payload segment: {token}"));
    serde_json::from_slice(&b64url_decode(segment)).expect("the payload is JSON")
}

/// 128 random bits, base64url: a fresh `jti`.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    b64url(bytes)
}

/// The claims of a normal valid token: `iss`, `sub`, `aud` (a string), `iat` = `nbf` = now,
/// `exp` = now + 300 and a random `jti`.
pub fn claims(iss: &str, sub: &str, aud: &str) -> Value {
    let now = crate::time::now_unix();
    json!({
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": random_id(),
    })
}

/// `object` after `edit` changed its members (claims, a header, a JWK). A value that is not a
/// JSON object is returned unchanged.
pub fn edited(mut object: Value, edit: impl FnOnce(&mut Map<String, Value>)) -> Value {
    if let Value::Object(map) = &mut object {
        edit(map);
    }
    object
}

/// The key set document `{"keys": [...]}` publishing the keys' public JWKs, in order.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a TestKey>) -> Value {
    json!({"keys": keys.into_iter().map(TestKey::public_jwk).collect::<Vec<_>>()})
}

/// The kind of a [`TestKey`], which fixes its JWS algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSA 2048, RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl KeyKind {
    /// All kinds, for tests that loop over them.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Rs256,
        KeyKind::Ps256,
        KeyKind::Es256,
        KeyKind::Es384,
        KeyKind::EdDsa,
    ];

    /// The JWS `alg` name.
    pub fn alg(self) -> &'static str {
        match self {
            KeyKind::Rs256 => "RS256",
            KeyKind::Ps256 => "PS256",
            KeyKind::Es256 => "ES256",
            KeyKind::Es384 => "ES384",
            KeyKind::EdDsa => "EdDSA",
        }
    }

    /// The aws-lc signing algorithm of the ECDSA kinds, `None` for the others.
    fn ecdsa(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            KeyKind::Es256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            KeyKind::Es384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            KeyKind::Rs256 | KeyKind::Ps256 | KeyKind::EdDsa => None,
        }
    }
}

/// The private half of a [`TestKey`].
#[derive(Debug)]
enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with a `kid` and its public JWK. Cheap to clone; `Send` and `Sync`.
#[derive(Clone, Debug)]
pub struct TestKey {
    kind: KeyKind,
    kid: String,
    pair: Arc<Pair>,
}

impl TestKey {
    /// A fresh key of the given kind (RSA keys are 2048 bits).
    pub fn generate(kind: KeyKind, kid: &str) -> TestKey {
        let pair = match kind {
            KeyKind::Rs256 | KeyKind::Ps256 => {
                Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key"))
            }
            KeyKind::Es256 | KeyKind::Es384 => {
                let alg = kind.ecdsa().expect("an ECDSA kind");
                Pair::Ec(EcdsaKeyPair::generate(alg).expect("generate an EC key"))
            }
            KeyKind::EdDsa => {
                Pair::Ed(Ed25519KeyPair::generate().expect("generate an Ed25519 key"))
            }
        };
        TestKey {
            kind,
            kid: kid.to_owned(),
            pair: Arc::new(pair),
        }
    }

    /// The key in a PKCS#8 document (`-----BEGIN PRIVATE KEY-----` holds one), as
    /// [`TestKey::pkcs8_der`] writes it: RSA for [`KeyKind::Rs256`] and [`KeyKind::Ps256`], a
    /// P-256 or P-384 key for the ECDSA kinds, Ed25519 for [`KeyKind::EdDsa`].
    ///
    /// # Errors
    /// If `der` is not a PKCS#8 key of that kind.
    pub fn from_pkcs8(kind: KeyKind, der: &[u8], kid: &str) -> Result<TestKey, KeyRejected> {
        let pair = match kind {
            KeyKind::Rs256 | KeyKind::Ps256 => Pair::Rsa(RsaKeyPair::from_pkcs8(der)?),
            KeyKind::Es256 | KeyKind::Es384 => {
                let alg = kind.ecdsa().expect("an ECDSA kind");
                Pair::Ec(EcdsaKeyPair::from_pkcs8(alg, der)?)
            }
            KeyKind::EdDsa => Pair::Ed(Ed25519KeyPair::from_pkcs8(der)?),
        };
        Ok(TestKey {
            kind,
            kid: kid.to_owned(),
            pair: Arc::new(pair),
        })
    }

    /// The same key pair under another `kid`.
    pub fn with_kid(&self, kid: &str) -> TestKey {
        TestKey {
            kind: self.kind,
            kid: kid.to_owned(),
            pair: Arc::clone(&self.pair),
        }
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Its `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS `alg`: "RS256", "PS256", "ES256", "ES384" or "EdDSA".
    pub fn alg(&self) -> &'static str {
        self.kind.alg()
    }

    /// The private key as a PKCS#8 v1 DER document.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        match &*self.pair {
            Pair::Rsa(pair) => pair.as_der().map(|d: Pkcs8V1Der<'_>| d.as_ref().to_vec()),
            Pair::Ec(pair) => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Pair::Ed(pair) => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
        }
        .expect("encode the key as PKCS#8")
    }

    /// The public JWK: `kty`, the key material (`n`/`e`, or `crv`/`x`(/`y`)), `kid`, `alg` and
    /// `"use": "sig"`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &*self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(pair) => {
                // The uncompressed SEC1 point: 0x04 || x || y.
                let point = &pair.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                let crv = if self.kind == KeyKind::Es256 {
                    "P-256"
                } else {
                    "P-384"
                };
                json!({"kty": "EC", "crv": crv, "x": b64url(x), "y": b64url(y)})
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(pair.public_key())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg());
        jwk["use"] = json!("sig");
        jwk
    }

    /// The DER `RSAPublicKey` (PKCS#1) of an RSA key, `None` for other kinds: what
    /// key-confusion forgeries use as an HMAC secret.
    pub fn rsa_public_der_pkcs1(&self) -> Option<Vec<u8>> {
        match &*self.pair {
            Pair::Rsa(pair) => Some(pair.public_key().as_ref().to_vec()),
            Pair::Ec(_) | Pair::Ed(_) => None,
        }
    }

    /// The public key parsed once for verification with the key's own algorithm, as the
    /// gateway keeps issuers' keys.
    pub fn verifier(&self) -> ParsedPublicKey {
        match &*self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                let params = if self.kind == KeyKind::Ps256 {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                PublicKeyComponents {
                    n: public.modulus().big_endian_without_leading_zero(),
                    e: public.exponent().big_endian_without_leading_zero(),
                }
                .to_parsed_public_key(params)
            }
            Pair::Ec(pair) => {
                let alg = if self.kind == KeyKind::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                ParsedPublicKey::new(alg, pair.public_key().as_ref())
            }
            Pair::Ed(pair) => ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref()),
        }
        .expect("parse the public key")
    }

    /// The signature of `message` with the key's own algorithm (ECDSA as JOSE wants it: the
    /// fixed-size `r ‖ s`).
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        match &*self.pair {
            Pair::Rsa(pair) => {
                let padding: &'static dyn RsaEncoding = if self.kind == KeyKind::Ps256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                rsa_signature(pair, padding, message)
            }
            Pair::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// `claims` signed under the header `{"alg": <alg>, "typ": "JWT", "kid": <kid>}`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid()});
        Jwt::new(&header, claims).sign(self)
    }

    /// Exactly the given header JSON and payload bytes, signed with this key's algorithm
    /// whatever the header says: for headers with `crit`, `jku`, odd `kid`s and the like, and
    /// payloads that are not a JSON object or repeat a member.
    pub fn sign_raw(&self, header: &Value, payload: &[u8]) -> String {
        Jwt::raw_payload(header, payload).sign(self)
    }
}

/// An RSA signature with the given padding.
fn rsa_signature(pair: &RsaKeyPair, padding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(padding, &SystemRandom::new(), message, &mut sig)
        .expect("RSA signing");
    sig
}

/// A compact JWS before its signature: the signing input `base64url(header).base64url(payload)`.
/// Each way to finish it returns the whole token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwt {
    signing_input: String,
}

impl Jwt {
    /// The header and claims as compact JSON.
    pub fn new(header: &Value, claims: &Value) -> Jwt {
        Jwt::raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// The header as compact JSON and any bytes as payload: JSON that is not an object or
    /// repeats a member, not JSON, not UTF-8.
    pub fn raw_payload(header: &Value, payload: &[u8]) -> Jwt {
        Jwt::raw(header.to_string().as_bytes(), payload)
    }

    /// Any bytes as header and payload: JSON with repeated members, not JSON, not UTF-8.
    pub fn raw(header: &[u8], payload: &[u8]) -> Jwt {
        Jwt {
            signing_input: format!("{}.{}", b64url(header), b64url(payload)),
        }
    }

    /// Segments already encoded, used verbatim (padded, standard base64, anything).
    pub fn encoded(header: &str, payload: &str) -> Jwt {
        Jwt {
            signing_input: format!("{header}.{payload}"),
        }
    }

    /// The bytes a signature covers: `header.payload` as encoded.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// Signed by `key` with its own algorithm, whatever the header says.
    pub fn sign(&self, key: &TestKey) -> String {
        self.with_signature(&key.signature(self.signing_input.as_bytes()))
    }

    /// Signed by the RSA `key` as the RSA algorithm `alg` says (`RS256`, `RS384`, `RS512`,
    /// `PS256`, `PS384` or `PS512`), whatever the key's own kind and the header say.
    ///
    /// # Panics
    /// If `key` is not an RSA key or `alg` is not one of those.
    pub fn sign_rsa(&self, key: &TestKey, alg: &str) -> String {
        let padding: &'static dyn RsaEncoding = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            "PS512" => &signature::RSA_PSS_SHA512,
            other => panic!("not an RSA algorithm: {other}"),
        };
        let Pair::Rsa(pair) = &*key.pair else {
            panic!("{} is not an RSA key", key.kid());
        };
        self.with_signature(&rsa_signature(pair, padding, self.signing_input.as_bytes()))
    }

    /// Signed with HMAC as `alg` says (`HS256`, `HS384` or `HS512`) keyed with `secret`: the
    /// forgery of algorithm-confusion attacks when the secret is a public key.
    ///
    /// # Panics
    /// If `alg` is not one of those.
    pub fn sign_hmac(&self, alg: &str, secret: &[u8]) -> String {
        let algorithm = match alg {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            other => panic!("not an HMAC algorithm: {other}"),
        };
        let tag = hmac::sign(
            &hmac::Key::new(algorithm, secret),
            self.signing_input.as_bytes(),
        );
        self.with_signature(tag.as_ref())
    }

    /// With these bytes as the signature, whatever they are.
    pub fn with_signature(&self, signature: &[u8]) -> String {
        format!("{}.{}", self.signing_input, b64url(signature))
    }

    /// With an empty signature segment: `header.payload.`.
    pub fn unsigned(&self) -> String {
        format!("{}.", self.signing_input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_signs_what_its_verifier_accepts_and_survives_pkcs8() {
        for kind in KeyKind::ALL {
            let key = TestKey::generate(kind, "k1");
            let token = key.sign(&claims("https://issuer.example", "s", "a"));
            let (head, payload, sig) = segments(&token);
            let header: Value = serde_json::from_slice(&b64url_decode(head)).expect("JSON");
            assert_eq!(
                header,
                json!({"alg": kind.alg(), "typ": "JWT", "kid": "k1"})
            );
            assert_eq!(decode_payload(&token)["sub"], "s");
            key.verifier()
                .verify_sig(format!("{head}.{payload}").as_bytes(), &b64url_decode(sig))
                .expect("the signature verifies");
            let jwk = key.public_jwk();
            assert_eq!(
                (&jwk["kid"], &jwk["alg"], &jwk["use"]),
                (&json!("k1"), &json!(kind.alg()), &json!("sig"))
            );
            let again = TestKey::from_pkcs8(kind, &key.pkcs8_der(), "k2").expect("PKCS#8");
            assert_eq!(
                again.public_jwk(),
                edited(jwk, |j| {
                    j.insert("kid".into(), json!("k2"));
                })
            );
            assert_eq!(key.with_kid("k3").public_jwk()["kid"], "k3");
        }
    }

    #[test]
    fn tokens_are_assembled_from_the_given_segments() {
        let jwt = Jwt::raw(b"{\"alg\":\"none\"}", b"[1]");
        assert_eq!(jwt.signing_input(), "eyJhbGciOiJub25lIn0.WzFd");
        assert_eq!(jwt.unsigned(), "eyJhbGciOiJub25lIn0.WzFd.");
        assert_eq!(jwt.with_signature(b"sig"), "eyJhbGciOiJub25lIn0.WzFd.c2ln");
        assert_eq!(Jwt::encoded("a=", "b+/").unsigned(), "a=.b+/.");
        let hs = jwt.sign_hmac("HS256", b"secret");
        assert_eq!(segments(&hs).2.len(), 43);
        assert_eq!(decode_payload(&format!("{hs}\n")), json!([1]));
        let key = TestKey::generate(KeyKind::Rs256, "rsa");
        let ps = jwt.sign_rsa(&key, "PS256");
        assert_eq!(b64url_decode(segments(&ps).2).len(), 256);
        assert_eq!(key.rsa_public_der_pkcs1().map(|d| d[0]), Some(0x30));
        assert_eq!(
            TestKey::generate(KeyKind::EdDsa, "ed").rsa_public_der_pkcs1(),
            None
        );
    }
}
