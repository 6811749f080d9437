//! Issuer keys: a JWKS (RFC 7517) parsed once into verification keys that stay parsed, and the
//! signature check itself.
//!
//! A rule of `docs/design.md#the-key-decides-the-algorithm` is enforced here: the *key* decides which algorithms may be used
//! with it, never the token header. An RSA key verifies only RS*/PS* (only its own `alg` when the
//! JWK names one), a P-256 key only ES256, a P-384 key only ES384, an Ed25519 key only EdDSA.
//! Symmetric (`oct`) keys, encryption keys (`use: enc`), keys whose `alg` contradicts their `kty`
//! and RSA keys under 2048 bits never become verification keys, and a `kid` published twice is
//! ambiguous and verifies nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::refusal::{ExchangeError, Reason, quote};

/// The asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037) the gateway verifies. `none` and the
/// HMAC family do not exist here, so they cannot be selected by any path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of public key; it fixes which algorithms are possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// Parses a JOSE `alg` value, case-sensitively (RFC 7515 §4.1.1).
    pub fn parse(alg: &str) -> Result<Self, ExchangeError> {
        if let Some(found) = Self::ALL.iter().find(|a| a.as_str() == alg) {
            return Ok(*found);
        }
        let why = if alg.eq_ignore_ascii_case("none") {
            "unsigned tokens are never accepted"
        } else if alg.to_ascii_uppercase().starts_with("HS") {
            "symmetric (HMAC) algorithms are never accepted"
        } else {
            "accepted: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA"
        };
        Err(ExchangeError::new(
            Reason::UnsupportedAlgorithm,
            format!("subject_token alg {} is not supported: {why}", quote(alg)),
        ))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::P256,
            Algorithm::ES384 => KeyFamily::P384,
            Algorithm::EdDSA => KeyFamily::Ed25519,
        }
    }

    fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        Some(match self {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            // JOSE ECDSA signatures are the fixed-width r‖s form (RFC 7518 §3.4), never DER.
            Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &signature::ED25519,
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One public key, parsed once per algorithm it may verify.
pub struct VerifyingKey {
    kid: Option<String>,
    family: KeyFamily,
    /// The algorithms this key may verify, each with its key already parsed for it. More than one
    /// entry only for an RSA JWK without `alg`, which may be used with any RS*/PS* algorithm.
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .finish()
    }
}

impl VerifyingKey {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.parsed.iter().map(|(alg, _)| *alg)
    }

    /// Verifies `signature` over `message` with `alg`, which must be one this key allows.
    pub fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> Result<(), ExchangeError> {
        let Some((_, key)) = self.parsed.iter().find(|(a, _)| *a == alg) else {
            return Err(ExchangeError::new(
                Reason::UnsupportedAlgorithm,
                format!(
                    "subject_token alg {alg} does not match key {} ({:?} key, allows {})",
                    quote(self.kid.as_deref().unwrap_or("(no kid)")),
                    self.family,
                    self.algorithms()
                        .map(Algorithm::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        key.verify_sig(message, sig).map_err(|_| {
            ExchangeError::new(
                Reason::BadSignature,
                format!(
                    "subject_token signature does not verify with key {} ({alg})",
                    quote(self.kid.as_deref().unwrap_or("(no kid)"))
                ),
            )
        })
    }
}

/// A parsed key set. Keys that cannot or must not be used are left out, with the reason kept for
/// operators (`skipped`).
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<String, usize>,
    /// `kid`s published more than once: a token naming one is refused rather than guessed at.
    ambiguous: HashSet<String>,
    /// Why each unusable JWK was left out, e.g. `kid "k2": symmetric (oct) keys are never used`.
    pub skipped: Vec<String>,
}

/// Most JWKS hold 1–4 keys; more than this is a misconfigured or hostile endpoint.
pub const MAX_KEYS: usize = 64;

/// Errors in a key set as a whole (each single bad key is only skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("JWKS is not valid JSON of the form {{\"keys\":[...]}}: {0}")]
    Malformed(String),
    #[error("JWKS has {0} keys; at most {MAX_KEYS} are accepted")]
    TooManyKeys(usize),
    #[error("JWKS has no usable signing key{0}")]
    NoUsableKey(String),
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document. Fails only when the document itself is unusable: not JSON, too
    /// many keys, or not one usable key.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, KeySetError> {
        let raw: RawJwks =
            serde_json::from_slice(bytes).map_err(|e| KeySetError::Malformed(e.to_string()))?;
        if raw.keys.len() > MAX_KEYS {
            return Err(KeySetError::TooManyKeys(raw.keys.len()));
        }
        let mut set = KeySet::default();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for value in raw.keys {
            let label = value
                .get("kid")
                .and_then(Value::as_str)
                .map_or_else(|| "(no kid)".to_owned(), |k| format!("{k:?}"));
            match serde_json::from_value::<RawJwk>(value)
                .map_err(|e| UnusableKey::Malformed(e.to_string()))
                .and_then(parse_jwk)
            {
                Ok(key) => {
                    if let Some(kid) = &key.kid {
                        *seen.entry(kid.clone()).or_default() += 1;
                    }
                    set.keys.push(key);
                }
                Err(why) => set.skipped.push(format!("kid {label}: {why}")),
            }
        }
        for (kid, count) in seen {
            if count > 1 {
                set.skipped
                    .push(format!("kid {kid:?}: published {count} times; not used"));
                set.ambiguous.insert(kid);
            }
        }
        set.keys.retain(|k| {
            k.kid
                .as_ref()
                .is_none_or(|kid| !set.ambiguous.contains(kid))
        });
        if set.keys.is_empty() {
            let why = if set.skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", set.skipped.join("; "))
            };
            return Err(KeySetError::NoUsableKey(why));
        }
        for (i, key) in set.keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                set.by_kid.insert(kid.clone(), i);
            }
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a token naming `kid` can be served from this set without refetching.
    pub fn knows(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid) || self.ambiguous.contains(kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(VerifyingKey::kid)
    }

    /// Verifies a token's signature. With a `kid`, only that key is tried; without one, every key
    /// of the algorithm's family is (JWKS are capped at [`MAX_KEYS`], so this is bounded).
    pub fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &[u8],
        sig: &[u8],
    ) -> Result<&VerifyingKey, ExchangeError> {
        match kid {
            Some(kid) => {
                if self.ambiguous.contains(kid) {
                    return Err(ExchangeError::new(
                        Reason::UnknownKey,
                        format!(
                            "subject_token kid {} is published more than once in the issuer's JWKS; refusing to guess",
                            quote(kid)
                        ),
                    ));
                }
                let key = self
                    .by_kid
                    .get(kid)
                    .and_then(|i| self.keys.get(*i))
                    .ok_or_else(|| {
                        ExchangeError::new(
                            Reason::UnknownKey,
                            format!(
                                "subject_token kid {} is not in the issuer's JWKS (known kids: {})",
                                quote(kid),
                                self.kids().map(quote).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?;
                key.verify(alg, message, sig).map(|()| key)
            }
            None => {
                let mut candidates = self
                    .keys
                    .iter()
                    .filter(|k| k.algorithms().any(|a| a == alg))
                    .peekable();
                if candidates.peek().is_none() {
                    return Err(ExchangeError::new(
                        Reason::UnknownKey,
                        format!("subject_token has no kid and the issuer's JWKS has no {alg} key"),
                    ));
                }
                candidates
                    .find(|k| k.verify(alg, message, sig).is_ok())
                    .ok_or_else(|| {
                        ExchangeError::new(
                            Reason::BadSignature,
                            format!(
                                "subject_token has no kid and its signature verifies with none of the issuer's {alg} keys"
                            ),
                        )
                    })
            }
        }
    }
}

/// Encodings of the eight small-order points of Curve25519 in Edwards form (orders 1, 2, 4 and
/// 8; libsodium's `has_small_order` list), compared without the sign bit. A public key among
/// them accepts signatures such as R = identity, S = 0 for many or all messages, and aws-lc does
/// not refuse them itself.
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // p − 1, p and p + 1: non-canonical spellings of the points above.
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

fn is_small_order_ed25519(x: &[u8]) -> bool {
    x.len() == 32
        && ED25519_SMALL_ORDER
            .iter()
            .any(|bad| x[..31] == bad[..31] && (x[31] & 0x7f) == bad[31])
}

/// Why one JWK of a set is not used for verification (the rest of the set still is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableKey {
    #[error("{0}")]
    Malformed(String),
    #[error("symmetric (oct) keys are never used")]
    Symmetric,
    #[error("use {0:?} is not \"sig\"")]
    NotForSignatures(String),
    #[error("key_ops does not include \"verify\"")]
    NotForVerifying,
    #[error("alg {0:?} is not an accepted signing algorithm")]
    UnacceptedAlgorithm(String),
    #[error("unsupported key type {kty:?} (crv {crv:?})")]
    UnsupportedType { kty: String, crv: Option<String> },
    #[error("alg {alg} does not fit a {family:?} key")]
    AlgorithmMismatch { alg: Algorithm, family: KeyFamily },
    #[error("missing {0}")]
    MissingField(&'static str),
    #[error("{0} is not base64url")]
    NotBase64(&'static str),
    #[error("RSA modulus of {0} bits is under 2048")]
    WeakRsa(usize),
    #[error("EC coordinates must be {0} bytes")]
    CoordinateLength(usize),
    #[error("Ed25519 key is a small-order point (it would verify forged signatures)")]
    SmallOrder,
    #[error("invalid {what} key: {reason}")]
    Invalid { what: &'static str, reason: String },
}

fn b64_field(value: Option<&String>, name: &'static str) -> Result<Vec<u8>, UnusableKey> {
    let value = value.ok_or(UnusableKey::MissingField(name))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| UnusableKey::NotBase64(name))
}

fn parse_jwk(jwk: RawJwk) -> Result<VerifyingKey, UnusableKey> {
    if jwk.kty == "oct" {
        return Err(UnusableKey::Symmetric);
    }
    if let Some(use_) = &jwk.use_
        && use_ != "sig"
    {
        return Err(UnusableKey::NotForSignatures(use_.clone()));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err(UnusableKey::NotForVerifying);
    }
    let declared = match jwk.alg.as_deref() {
        None => None,
        Some(alg) => Some(
            Algorithm::ALL
                .into_iter()
                .find(|a| a.as_str() == alg)
                .ok_or_else(|| UnusableKey::UnacceptedAlgorithm(alg.to_owned()))?,
        ),
    };
    let family = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => KeyFamily::Rsa,
        ("EC", Some("P-256")) => KeyFamily::P256,
        ("EC", Some("P-384")) => KeyFamily::P384,
        ("OKP", Some("Ed25519")) => KeyFamily::Ed25519,
        (kty, crv) => {
            return Err(UnusableKey::UnsupportedType {
                kty: kty.to_owned(),
                crv: crv.map(str::to_owned),
            });
        }
    };
    let algorithms: Vec<Algorithm> = match declared {
        Some(alg) if alg.family() != family => {
            return Err(UnusableKey::AlgorithmMismatch { alg, family });
        }
        Some(alg) => vec![alg],
        None => Algorithm::ALL
            .into_iter()
            .filter(|a| a.family() == family)
            .collect(),
    };
    let mut parsed = Vec::with_capacity(algorithms.len());
    match family {
        KeyFamily::Rsa => {
            let n = b64_field(jwk.n.as_ref(), "n")?;
            let e = b64_field(jwk.e.as_ref(), "e")?;
            let strip = |b: &[u8]| -> Vec<u8> {
                let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
                b[start..].to_vec()
            };
            let components = PublicKeyComponents {
                n: strip(&n),
                e: strip(&e),
            };
            let bits = components.n.len() * 8;
            if bits < 2048 {
                return Err(UnusableKey::WeakRsa(bits));
            }
            for alg in algorithms {
                let invalid = |reason: String| UnusableKey::Invalid {
                    what: "RSA",
                    reason,
                };
                let params = alg
                    .rsa_parameters()
                    .ok_or_else(|| invalid("not an RSA algorithm".into()))?;
                let key = components
                    .to_parsed_public_key(params)
                    .map_err(|e| invalid(e.to_string()))?;
                parsed.push((alg, key));
            }
        }
        KeyFamily::P256 | KeyFamily::P384 => {
            let x = b64_field(jwk.x.as_ref(), "x")?;
            let y = b64_field(jwk.y.as_ref(), "y")?;
            let width = if family == KeyFamily::P256 { 32 } else { 48 };
            if x.len() != width || y.len() != width {
                return Err(UnusableKey::CoordinateLength(width));
            }
            let mut point = Vec::with_capacity(1 + 2 * width);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            for alg in algorithms {
                let key = ParsedPublicKey::new(alg.verification(), &point).map_err(|e| {
                    UnusableKey::Invalid {
                        what: "EC",
                        reason: e.to_string(),
                    }
                })?;
                parsed.push((alg, key));
            }
        }
        KeyFamily::Ed25519 => {
            let x = b64_field(jwk.x.as_ref(), "x")?;
            if is_small_order_ed25519(&x) {
                return Err(UnusableKey::SmallOrder);
            }
            for alg in algorithms {
                let key = ParsedPublicKey::new(alg.verification(), &x).map_err(|e| {
                    UnusableKey::Invalid {
                        what: "Ed25519",
                        reason: e.to_string(),
                    }
                })?;
                parsed.push((alg, key));
            }
        }
    }
    Ok(VerifyingKey {
        kid: jwk.kid,
        family,
        parsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn ec_jwk(kid: &str) -> (EcdsaKeyPair, Value) {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("gen");
        let point = pair.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        (pair, jwk)
    }

    fn set(keys: Vec<Value>) -> Result<KeySet, KeySetError> {
        KeySet::from_jwks_json(serde_json::json!({ "keys": keys }).to_string().as_bytes())
    }

    #[test]
    fn verifies_with_the_key_and_only_its_algorithm() {
        let (pair, jwk) = ec_jwk("k1");
        let keys = set(vec![jwk]).expect("set");
        let sig = pair.sign(&SystemRandom::new(), b"msg").expect("sign");
        assert!(
            keys.verify(Some("k1"), Algorithm::ES256, b"msg", sig.as_ref())
                .is_ok()
        );
        assert!(
            keys.verify(None, Algorithm::ES256, b"msg", sig.as_ref())
                .is_ok()
        );
        let wrong_msg = keys.verify(Some("k1"), Algorithm::ES256, b"msh", sig.as_ref());
        assert_eq!(
            wrong_msg.map(|_| ()).map_err(|e| e.reason),
            Err(Reason::BadSignature)
        );
        let wrong_alg = keys.verify(Some("k1"), Algorithm::RS256, b"msg", sig.as_ref());
        assert_eq!(
            wrong_alg.map(|_| ()).map_err(|e| e.reason),
            Err(Reason::UnsupportedAlgorithm)
        );
        let unknown = keys.verify(Some("k9"), Algorithm::ES256, b"msg", sig.as_ref());
        assert_eq!(
            unknown.map(|_| ()).map_err(|e| e.reason),
            Err(Reason::UnknownKey)
        );
        // CVE-2022-21449: r = s = 0 must never verify.
        let zero = keys.verify(Some("k1"), Algorithm::ES256, b"msg", &[0u8; 64]);
        assert_eq!(
            zero.map(|_| ()).map_err(|e| e.reason),
            Err(Reason::BadSignature)
        );
    }

    #[test]
    fn eddsa_keys_verify() {
        let pair = Ed25519KeyPair::generate().expect("gen");
        let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":"e","x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let keys = set(vec![jwk]).expect("set");
        let sig = pair.sign(b"m");
        assert!(
            keys.verify(Some("e"), Algorithm::EdDSA, b"m", sig.as_ref())
                .is_ok()
        );
        assert!(
            keys.verify(Some("e"), Algorithm::ES256, b"m", sig.as_ref())
                .is_err()
        );
    }

    #[test]
    fn leaves_out_keys_that_must_not_verify() {
        let (_, good) = ec_jwk("good");
        let (_, dup_a) = ec_jwk("dup");
        let (_, dup_b) = ec_jwk("dup");
        let (_, mut enc) = ec_jwk("enc");
        enc["use"] = "enc".into();
        let (_, mut mismatched) = ec_jwk("mismatch");
        mismatched["alg"] = "RS256".into();
        let (_, mut no_verify) = ec_jwk("ops");
        no_verify["key_ops"] = serde_json::json!(["encrypt"]);
        let oct = serde_json::json!({"kty":"oct","kid":"hmac","k":"c2VjcmV0"});
        let short_rsa = serde_json::json!({"kty":"RSA","kid":"short","n": URL_SAFE_NO_PAD.encode([0xc5u8; 128]),"e":"AQAB"});
        let unknown = serde_json::json!({"kty":"AKP","kid":"pq"});
        let keys = set(vec![
            good, dup_a, dup_b, enc, mismatched, no_verify, oct, short_rsa, unknown,
        ])
        .expect("set");
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["good"]);
        for kid in ["hmac", "enc", "mismatch", "ops", "short", "pq", "dup"] {
            assert!(
                keys.skipped.iter().any(|s| s.contains(kid)),
                "{kid} not reported: {:?}",
                keys.skipped
            );
        }
        let dup = keys.verify(Some("dup"), Algorithm::ES256, b"m", &[0; 64]);
        assert!(dup.is_err_and(|e| e.description.contains("more than once")));
    }

    #[test]
    fn small_order_ed25519_keys_are_refused() {
        // The identity point verifies R = identity, S = 0 over any message (found by fuzzing).
        for (name, x) in ED25519_SMALL_ORDER.iter().enumerate() {
            for sign in [0u8, 0x80] {
                let mut x = *x;
                x[31] |= sign;
                let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":"bad","x": URL_SAFE_NO_PAD.encode(x)});
                let result = set(vec![jwk]);
                assert!(
                    matches!(&result, Err(KeySetError::NoUsableKey(why)) if why.contains("small-order")),
                    "point {name} sign {sign}: {result:?}"
                );
            }
        }
        let pair = Ed25519KeyPair::generate().expect("gen");
        assert!(!is_small_order_ed25519(pair.public_key().as_ref()));
    }

    #[test]
    fn rejects_unusable_documents() {
        assert!(matches!(
            KeySet::from_jwks_json(b"{not json"),
            Err(KeySetError::Malformed(_))
        ));
        assert!(matches!(set(vec![]), Err(KeySetError::NoUsableKey(_))));
        let oct = serde_json::json!({"kty":"oct","kid":"hmac","k":"c2VjcmV0"});
        assert!(
            matches!(set(vec![oct]), Err(KeySetError::NoUsableKey(why)) if why.contains("oct"))
        );
        let many = (0..=MAX_KEYS).map(|i| ec_jwk(&i.to_string()).1).collect();
        assert!(matches!(set(many), Err(KeySetError::TooManyKeys(_))));
    }
}
