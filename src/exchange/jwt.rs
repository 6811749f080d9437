//! Reading a compact JWS (RFC 7515 §7.1) *without* trusting it: enough to find the federation
//! (`iss`) and the key (`kid`, `alg`) that will verify it. Everything here is attacker input, so
//! the reader caps sizes, rejects what the gateway never honours (JWE, `crit`, key-locating
//! headers such as `jku`), and types every claim it reads. Signature verification happens in
//! [`super::issuer_keys`]; claim rules in [`super::authorize`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::issuer_keys::Algorithm;
use super::refusal::{ExchangeError, Reason, quote};

/// Tokens longer than this are rejected before any decoding (`docs/design.md#sizes`).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// A `kid` longer than this is not a key id anyone publishes.
pub const MAX_KID_BYTES: usize = 256;

/// A JWS whose header and claims have been decoded but whose signature is not yet checked.
#[derive(Debug)]
pub struct UnverifiedJwt<'a> {
    /// The algorithm the header claims; [`super::issuer_keys`] checks it against the key.
    pub alg: Algorithm,
    /// The header `kid`, if any.
    pub kid: Option<String>,
    /// The typed claims.
    pub claims: Claims,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// The registered claims the gateway reads (RFC 7519 §4.1). Others are ignored. Serde rejects a
/// registered claim that appears twice, so `{"sub":"a","sub":"b"}` cannot confuse two readers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub jti: Option<String>,
}

/// `aud`: a single string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The audience values as a slice-like iterator.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional; kept as whole
/// seconds. Values beyond ±10^11 s (year ~5000) are refused as nonsense rather than overflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NumericDate(pub i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const LIMIT: f64 = 1e11;
        let n = serde_json::Number::deserialize(d)?;
        let value = if let Some(i) = n.as_i64() {
            i as f64
        } else {
            n.as_f64().unwrap_or(f64::INFINITY)
        };
        if !value.is_finite() || value.abs() > LIMIT {
            return Err(serde::de::Error::custom(format!(
                "NumericDate {n} is out of range"
            )));
        }
        Ok(NumericDate(value.floor() as i64))
    }
}

/// The JOSE header fields the gateway looks at. Anything that would change how the token is
/// interpreted or where its key comes from is captured so that it can be refused. A field that
/// is present counts even when its value is `null` (`{"crit": null}` is still a `crit` header),
/// and a field given twice is an error (serde refuses duplicate fields of a struct).
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default, deserialize_with = "present")]
    alg: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    kid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jku: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jwk: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5u: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5c: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    b64: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    zip: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    enc: Option<Value>,
}

/// `Some(value)` for any present value, `null` included; absent fields take the default `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn malformed(detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(Reason::MalformedToken, detail.into())
}

fn decode_segment(segment: &str, what: &str) -> Result<Vec<u8>, ExchangeError> {
    if segment.is_empty() {
        return Err(malformed(format!(
            "subject_token has an empty {what} segment"
        )));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        malformed(format!(
            "subject_token {what} is not unpadded base64url (RFC 7515 §2)"
        ))
    })
}

/// Splits and decodes a compact JWS. Checks, in order: size, shape (JWE is refused by name),
/// base64url, header JSON and hygiene, algorithm, claims JSON and types.
pub fn read(token: &str) -> Result<UnverifiedJwt<'_>, ExchangeError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ExchangeError::new(
            Reason::TokenTooLarge,
            format!(
                "subject_token is {} bytes; the limit is {MAX_TOKEN_BYTES}",
                token.len()
            ),
        ));
    }
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        3 => {}
        5 => {
            return Err(malformed(
                "subject_token is a JWE (5 segments); only signed JWTs (JWS) are accepted",
            ));
        }
        n => {
            return Err(malformed(format!(
                "subject_token has {n} segments; a JWT in compact form has 3"
            )));
        }
    }
    // The header first: `alg: none` with an empty signature is an algorithm problem.
    let header = decode_segment(segments[0], "header")?;
    let header: RawHeader = parse_object(&header, "header")?;
    let (alg, kid) = check_header(header)?;
    let payload = decode_segment(segments[1], "payload")?;
    let claims: Claims = parse_object(&payload, "claims")?;
    if segments[2].is_empty() {
        return Err(ExchangeError::new(
            Reason::BadSignature,
            "subject_token has no signature".into(),
        ));
    }
    let signature = decode_segment(segments[2], "signature")?;
    let signing_len = segments[0].len() + 1 + segments[1].len();
    Ok(UnverifiedJwt {
        alg,
        kid,
        claims,
        signing_input: &token.as_bytes()[..signing_len],
        signature,
    })
}

fn parse_object<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ExchangeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| malformed(format!("subject_token {what} is not UTF-8")))?;
    if !text.trim_start().starts_with('{') {
        return Err(malformed(format!(
            "subject_token {what} is not a JSON object"
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        let reason = if what == "claims" {
            Reason::InvalidClaim
        } else {
            Reason::MalformedToken
        };
        // serde quotes the offending value whole; keep the message bounded.
        let detail: String = e.to_string().chars().take(300).collect();
        ExchangeError::new(
            reason,
            format!("subject_token {what} are invalid: {detail}"),
        )
    })
}

fn check_header(h: RawHeader) -> Result<(Algorithm, Option<String>), ExchangeError> {
    let forbidden = |name: &str, why: &str| {
        ExchangeError::new(
            Reason::ForbiddenHeader,
            format!("subject_token header {name} is not accepted: {why}"),
        )
    };
    if h.enc.is_some() {
        return Err(forbidden("enc", "encrypted tokens (JWE) are not accepted"));
    }
    if h.crit.is_some() {
        return Err(forbidden(
            "crit",
            "no critical header extensions are understood (RFC 7515 §4.1.11)",
        ));
    }
    for (name, value) in [
        ("jku", &h.jku),
        ("jwk", &h.jwk),
        ("x5u", &h.x5u),
        ("x5c", &h.x5c),
    ] {
        if value.is_some() {
            return Err(forbidden(
                name,
                "keys come only from the federation's configured key source",
            ));
        }
    }
    if h.b64.is_some() {
        return Err(forbidden(
            "b64",
            "unencoded payloads (RFC 7797) are not accepted",
        ));
    }
    if h.zip.is_some() {
        return Err(forbidden("zip", "compressed payloads are not accepted"));
    }
    let alg = match h.alg {
        Some(Value::String(alg)) => Algorithm::parse(&alg)?,
        Some(other) => {
            return Err(malformed(format!(
                "subject_token header alg must be a string, not {}",
                quote(&other.to_string())
            )));
        }
        None => return Err(malformed("subject_token header has no alg")),
    };
    let kid = match h.kid {
        None => None,
        Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(kid),
        Some(Value::String(kid)) => {
            return Err(malformed(format!(
                "subject_token header kid is {} bytes; the limit is {MAX_KID_BYTES}",
                kid.len()
            )));
        }
        Some(_) => return Err(malformed("subject_token header kid must be a string")),
    };
    Ok((alg, kid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    const HEADER: &str = r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#;
    const CLAIMS: &str =
        r#"{"iss":"https://i","sub":"s","aud":["a","b"],"exp":1.5e9,"iat":1500000000,"nbf":1}"#;

    #[test]
    fn reads_a_well_formed_token() {
        let t = token(HEADER, CLAIMS);
        let jwt = read(&t).expect("valid");
        assert_eq!(jwt.alg, Algorithm::RS256);
        assert_eq!(jwt.kid.as_deref(), Some("k1"));
        assert_eq!(jwt.claims.iss.as_deref(), Some("https://i"));
        assert_eq!(jwt.claims.exp, Some(NumericDate(1_500_000_000)));
        let aud: Vec<&str> = jwt
            .claims
            .aud
            .as_ref()
            .map(|a| a.values().collect())
            .unwrap_or_default();
        assert_eq!(aud, ["a", "b"]);
        assert_eq!(jwt.signature, b"sig");
        assert_eq!(
            jwt.signing_input,
            t.rsplit_once('.')
                .map(|(a, _)| a)
                .unwrap_or_default()
                .as_bytes()
        );
    }

    #[test]
    fn rejects_hostile_shapes() {
        let good = token(HEADER, CLAIMS);
        let cases: Vec<(&str, String, Reason)> = vec![
            ("jwe", format!("{good}.x.y"), Reason::MalformedToken),
            (
                "two segments",
                good.rsplit_once('.')
                    .map(|x| x.0)
                    .unwrap_or_default()
                    .to_owned(),
                Reason::MalformedToken,
            ),
            ("four segments", format!("{good}.x"), Reason::MalformedToken),
            (
                "empty header",
                format!(".{}", good.split_once('.').map(|x| x.1).unwrap_or_default()),
                Reason::MalformedToken,
            ),
            (
                "empty signature",
                format!(
                    "{}.",
                    good.rsplit_once('.').map(|x| x.0).unwrap_or_default()
                ),
                Reason::BadSignature,
            ),
            ("padding", format!("{}=", good), Reason::MalformedToken),
            (
                "bad base64",
                good.replacen('e', "!", 1),
                Reason::MalformedToken,
            ),
            (
                "too large",
                "a".repeat(MAX_TOKEN_BYTES + 1),
                Reason::TokenTooLarge,
            ),
            ("header array", token("[1]", CLAIMS), Reason::MalformedToken),
            ("claims array", token(HEADER, "[1]"), Reason::MalformedToken),
            (
                "claims not utf8",
                format!(
                    "{}.{}.{}",
                    b64(HEADER),
                    URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
                    b64("s")
                ),
                Reason::MalformedToken,
            ),
            (
                "duplicate sub",
                token(HEADER, r#"{"sub":"a","sub":"b"}"#),
                Reason::InvalidClaim,
            ),
            (
                "exp string",
                token(HEADER, r#"{"exp":"1"}"#),
                Reason::InvalidClaim,
            ),
            (
                "exp huge",
                token(HEADER, r#"{"exp":1e300}"#),
                Reason::InvalidClaim,
            ),
            (
                "aud number",
                token(HEADER, r#"{"aud":5}"#),
                Reason::InvalidClaim,
            ),
            (
                "sub number",
                token(HEADER, r#"{"sub":5}"#),
                Reason::InvalidClaim,
            ),
            (
                "alg none",
                token(r#"{"alg":"none"}"#, CLAIMS),
                Reason::UnsupportedAlgorithm,
            ),
            (
                "alg NONE",
                token(r#"{"alg":"NONE"}"#, CLAIMS),
                Reason::UnsupportedAlgorithm,
            ),
            (
                "alg HS256",
                token(r#"{"alg":"HS256"}"#, CLAIMS),
                Reason::UnsupportedAlgorithm,
            ),
            (
                "alg unknown",
                token(r#"{"alg":"XX999"}"#, CLAIMS),
                Reason::UnsupportedAlgorithm,
            ),
            (
                "alg number",
                token(r#"{"alg":256}"#, CLAIMS),
                Reason::MalformedToken,
            ),
            (
                "no alg",
                token(r#"{"kid":"k"}"#, CLAIMS),
                Reason::MalformedToken,
            ),
            (
                "crit",
                token(r#"{"alg":"RS256","crit":["exp"]}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "jku",
                token(r#"{"alg":"RS256","jku":"https://evil"}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "jwk",
                token(r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "x5u",
                token(r#"{"alg":"RS256","x5u":"https://evil"}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "x5c",
                token(r#"{"alg":"RS256","x5c":["MII"]}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "b64",
                token(r#"{"alg":"RS256","b64":false}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "zip",
                token(r#"{"alg":"RS256","zip":"DEF"}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "kid number",
                token(r#"{"alg":"RS256","kid":1}"#, CLAIMS),
                Reason::MalformedToken,
            ),
            (
                "kid huge",
                token(
                    &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(10 * 1024)),
                    CLAIMS,
                ),
                Reason::MalformedToken,
            ),
            (
                "duplicate alg",
                token(r#"{"alg":"RS256","alg":"ES256"}"#, CLAIMS),
                Reason::MalformedToken,
            ),
            (
                "kid null",
                token(r#"{"alg":"RS256","kid":null}"#, CLAIMS),
                Reason::MalformedToken,
            ),
            (
                "crit null",
                token(r#"{"alg":"RS256","crit":null}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "jku null",
                token(r#"{"alg":"RS256","jku":null}"#, CLAIMS),
                Reason::ForbiddenHeader,
            ),
            (
                "long wrong-typed claim",
                token(HEADER, &format!(r#"{{"exp":"{}"}}"#, "A".repeat(4000))),
                Reason::InvalidClaim,
            ),
            (
                "alg null",
                token(r#"{"alg":null}"#, CLAIMS),
                Reason::MalformedToken,
            ),
        ];
        for (name, input, expected) in cases {
            let err = read(&input).expect_err(name);
            assert_eq!(err.reason, expected, "{name}: {}", err.description);
            assert!(
                err.description.len() < 1024,
                "{name}: description of {} bytes",
                err.description.len()
            );
        }
    }
}
