//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), verified: what a downstream S3-compatible
//! service hands to `POST /iam/v1/authorize` so that the gateway, which holds the static access
//! keys' secrets, says whose signature it is. Pure: no I/O, no clock (`now` is a parameter), no
//! store; [`crate::iam::access_keys`] looks the key up and opens its secret.
//!
//! The steps are the specification's ("Create a signed AWS API request", AWS IAM User Guide;
//! "Authenticating Requests (AWS Signature Version 4)", Amazon S3 API Reference):
//!
//! 1. **Canonical request**: `method \n canonical URI \n canonical query \n canonical headers
//!    \n signed headers \n payload hash` ([`canonical_request`]).
//!    - URI: the path's segments URI-encoded (RFC 3986 unreserved characters kept, everything
//!      else `%XX` uppercase, `/` kept). S3 encodes the path once and does not normalize it;
//!      every other service removes `.`/`..` and empty segments, then encodes the path *as
//!      received*, which encodes it a second time (`%20` becomes `%2520`).
//!    - Query: each name and value URI-encoded, sorted by name then value, `name=value` joined
//!      by `&`; a presigned URL's `X-Amz-Signature` left out.
//!    - Headers: the signed ones (lowercase names, the `SignedHeaders` order), values trimmed,
//!      inner runs of white space made one space, repeated headers' values joined by `,`.
//! 2. **String to sign**: `AWS4-HMAC-SHA256 \n x-amz-date \n scope \n hex(SHA-256(canonical
//!    request))`, the scope `yyyymmdd/region/service/aws4_request` ([`string_to_sign`]).
//! 3. **Signing key**: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//!    "aws4_request")` ([`signing_key`]).
//! 4. **Signature**: `hex(HMAC(signing key, string to sign))`, compared in constant time
//!    ([`Signed::verify`]).
//!
//! The signature comes from the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
//! Signature=…` header, or from a presigned URL's `X-Amz-*` query parameters
//! ([`Signed::from_request`]); a service that canonicalizes itself sends the string to sign
//! and the signature ([`Signed::from_string_to_sign`], Yandex's `AccessKeySignature`).
//!
//! | rule | refusal |
//! |---|---|
//! | the signature is well formed (one mechanism, fields present, 64 hex digits, known algorithm) | [`Refusal::Malformed`] |
//! | the credential scope ends with `aws4_request` | [`Refusal::ScopeTerminator`] |
//! | the scope's date is the date of `x-amz-date` | [`Refusal::ScopeDate`] |
//! | `host` is a signed header | [`Refusal::HostNotSigned`] |
//! | a signed `x-amz-content-sha256` is the payload's hash as received | [`Refusal::PayloadHash`] |
//! | `x-amz-date` within 15 minutes of the server's clock (a presigned URL's: not in the future beyond that) | [`Refusal::Skewed`] |
//! | a presigned URL's `X-Amz-Date + X-Amz-Expires` (at most 7 days) not passed | [`Refusal::Expired`] |
//! | the signature is the HMAC of the string to sign under the key's signing key | [`Refusal::Mismatch`] |
//!
//! Refusals never repeat the signature or anything secret.

use std::fmt;

use aws_lc_rs::{digest, hmac};

use crate::exchange::quote;
use crate::time::rfc3339;

/// The only algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Largest distance between `x-amz-date` and the server's clock (AWS's 15 minutes).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// Longest `X-Amz-Expires` of a presigned URL (AWS's 7 days).
pub const MAX_EXPIRES_SECONDS: i64 = 7 * 24 * 3600;

/// A signed HTTP request as the service that received it saw it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as received, percent-encoding and all (`/bucket/my%20key`).
    pub path: &'a str,
    /// The query string as received, without `?` (empty when there is none).
    pub query: &'a str,
    /// Every header as received, in order; a name may repeat.
    pub headers: &'a [(String, String)],
    /// SHA-256 of the body as received (64 hex digits), or [`UNSIGNED_PAYLOAD`]. An S3
    /// presigned URL is canonicalized with [`UNSIGNED_PAYLOAD`] whatever this says.
    pub payload_hash: &'a str,
}

/// Why a signature is refused. The message names the rule and the values it compared, never
/// the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed(String),
    ScopeTerminator(String),
    ScopeDate { scope: String, request: String },
    HostNotSigned,
    PayloadHash,
    Skewed { signed_at: i64, now: i64 },
    Expired { expired_at: i64, now: i64 },
    Mismatch,
}

impl Refusal {
    /// A stable name of the rule, for error reasons and metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed_signature",
            Refusal::ScopeTerminator(_) => "credential_scope_terminator",
            Refusal::ScopeDate { .. } => "credential_scope_date",
            Refusal::HostNotSigned => "host_not_signed",
            Refusal::PayloadHash => "payload_hash_mismatch",
            Refusal::Skewed { .. } => "request_time_skewed",
            Refusal::Expired { .. } => "presigned_url_expired",
            Refusal::Mismatch => "signature_mismatch",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(what) => write!(f, "the AWS signature is malformed: {what}"),
            Refusal::ScopeTerminator(last) => write!(
                f,
                "the credential scope ends with {}, not {TERMINATOR}",
                quote(last)
            ),
            Refusal::ScopeDate { scope, request } => write!(
                f,
                "the credential scope's date {} is not the date of the request's x-amz-date {}",
                quote(scope),
                quote(request)
            ),
            Refusal::HostNotSigned => f.write_str(
                "the host header is not among the signed headers: a signature must cover it",
            ),
            Refusal::PayloadHash => f.write_str(
                "the payload's SHA-256 is not the x-amz-content-sha256 the request signed: the body is not the one signed",
            ),
            Refusal::Skewed { signed_at, now } => write!(
                f,
                "the request was signed at {}, more than 15 minutes from the server's clock ({})",
                rfc3339(*signed_at),
                rfc3339(*now)
            ),
            Refusal::Expired { expired_at, now } => write!(
                f,
                "the presigned URL expired at {} (server time {})",
                rfc3339(*expired_at),
                rfc3339(*now)
            ),
            Refusal::Mismatch => f.write_str(
                "the signature does not match: the request is not the one signed, or it was not signed with this access key's secret",
            ),
        }
    }
}

fn malformed(what: impl Into<String>) -> Refusal {
    Refusal::Malformed(what.into())
}

/// A signature, read and checked as far as it can be without the secret: whose key it names,
/// its scope, when it was made, and the string to sign it covers.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// The scope's date, `yyyymmdd`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `x-amz-date` (or `X-Amz-Date`, or `signedAt`), Unix seconds.
    pub signed_at: i64,
    /// A presigned URL's `X-Amz-Expires`.
    pub expires: Option<i64>,
    string_to_sign: String,
    signature: [u8; 32],
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("access_key_id", &self.access_key_id)
            .field("date", &self.date)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("signed_at", &self.signed_at)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// `Credential=` (or `X-Amz-Credential`): `key/date/region/service/aws4_request`.
fn credential(text: &str) -> Result<(String, String, String, String), Refusal> {
    let parts: Vec<&str> = text.split('/').collect();
    if let [.., last] = parts.as_slice()
        && parts.len() >= 2
        && *last != TERMINATOR
    {
        return Err(Refusal::ScopeTerminator((*last).to_owned()));
    }
    match parts.as_slice() {
        [key, date, region, service, _]
            if !key.is_empty() && !region.is_empty() && !service.is_empty() =>
        {
            check_date(date)?;
            Ok((
                (*key).to_owned(),
                (*date).to_owned(),
                (*region).to_owned(),
                (*service).to_owned(),
            ))
        }
        _ => Err(malformed(
            "the credential is not <access key id>/<yyyymmdd>/<region>/<service>/aws4_request",
        )),
    }
}

fn check_date(date: &str) -> Result<(), Refusal> {
    if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(malformed(format!(
            "the credential scope's date {} is not yyyymmdd",
            quote(date)
        )))
    }
}

/// `yyyymmddThhmmssZ` → Unix seconds.
fn amz_date(text: &str) -> Result<i64, Refusal> {
    let bad = || {
        malformed(format!(
            "the date {} is not yyyymmddThhmmssZ (ISO 8601 basic, UTC)",
            quote(text)
        ))
    };
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, Refusal> {
        let part = text.get(range).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    crate::time::unix_of(
        i64::from(num(0..4)?),
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?,
    )
    .ok_or_else(bad)
}

/// 64 hex digits → 32 bytes.
fn signature_bytes(hex: &str) -> Result<[u8; 32], Refusal> {
    let bad = || malformed("the signature is not 64 hexadecimal digits");
    let b = hex.as_bytes();
    if b.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = hex_value(pair[0]).ok_or_else(bad)?;
        let lo = hex_value(pair[1]).ok_or_else(bad)?;
        if let Some(slot) = out.get_mut(i) {
            *slot = hi << 4 | lo;
        }
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

pub use crate::signing::hex;

/// The headers named `name` (any case), in order.
fn header_values<'a, 'n>(
    headers: &'a [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The one header `name`, if present; two or more are malformed.
fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, Refusal> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(malformed(format!(
            "the request has more than one {name} header"
        )));
    }
    Ok(first)
}

/// The query's parameters, percent-decoded (`+` is kept as it is).
fn query_pairs(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex_value),
                b.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// AWS's URI encoding: RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) as they are,
/// `/` as it is when `keep_slash`, every other byte `%XX` in uppercase hex.
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }
}

/// RFC 3986 §5.2.4 with empty segments removed too, as AWS services (but S3) normalize a path:
/// `/a/./b/../c//d/` → `/a/c/d/`.
fn normalized_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical URI of `path` (as received) for `service`.
pub fn canonical_uri(path: &str, service: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    if service == "s3" {
        // Segment by segment, so that an encoded `/` in a key stays one.
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            uri_encode(&percent_decode(segment), false, &mut out);
        }
    } else {
        uri_encode(normalized_path(path).as_bytes(), true, &mut out);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query string: parameters encoded, sorted, `X-Amz-Signature` left out when
/// `presigned`.
pub fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(name, _)| !(presigned && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| {
            let (mut n, mut v) = (String::new(), String::new());
            uri_encode(&name, false, &mut n);
            uri_encode(&value, false, &mut v);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The canonical request of `request` for the headers `signed` (lowercase, in the order the
/// signature lists them), for `service`.
pub fn canonical_request(
    request: &HttpRequest<'_>,
    signed: &[&str],
    service: &str,
    presigned: bool,
) -> Result<String, Refusal> {
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path, service));
    out.push('\n');
    out.push_str(&canonical_query(request.query, presigned));
    out.push('\n');
    for name in signed {
        let mut values = header_values(request.headers, name).peekable();
        if values.peek().is_none() {
            return Err(malformed(format!(
                "the signed header {} is not in the request",
                quote(name)
            )));
        }
        out.push_str(name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, word) in value.split_whitespace().enumerate() {
                if j > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(request.payload_hash);
    Ok(out)
}

/// The string to sign of a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let hash = digest::digest(&digest::SHA256, canonical_request.as_bytes());
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(hash.as_ref()))
}

/// The signing key of `secret` for a scope.
pub fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> hmac::Key {
    let mut first = Vec::with_capacity(4 + secret.len());
    first.extend_from_slice(b"AWS4");
    first.extend_from_slice(secret);
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, &first);
    first.iter_mut().for_each(|b| *b = 0);
    for part in [date, region, service, TERMINATOR] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}

/// The signature (lowercase hex) of `string_to_sign` with `secret` for a scope: what a client
/// computes.
pub fn signature(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let key = signing_key(secret, date, region, service);
    hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref())
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header value.
fn authorization_parts(value: &str) -> Result<(&str, &str, &str), Refusal> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme != ALGORITHM {
        return Err(malformed(format!(
            "the Authorization header uses the scheme {}, not {ALGORITHM}",
            quote(&scheme.chars().take(40).collect::<String>())
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').ok_or_else(|| {
            malformed("the Authorization header is not Credential=…, SignedHeaders=…, Signature=…")
        })?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format!(
                "the Authorization header names {name} twice"
            )));
        }
    }
    match (credential, signed, signature) {
        (Some(c), Some(h), Some(s)) => Ok((c, h, s)),
        _ => Err(malformed(
            "the Authorization header lacks Credential, SignedHeaders or Signature",
        )),
    }
}

/// `SignedHeaders` → the names, lowercase, distinct, `host` among them.
fn signed_header_names(text: &str) -> Result<Vec<&str>, Refusal> {
    let names: Vec<&str> = text.split(';').collect();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_uppercase() || !b.is_ascii_graphic() || b == b':')
            || names[..i].contains(name)
        {
            return Err(malformed(
                "SignedHeaders is not a list of distinct lowercase header names separated by ;",
            ));
        }
    }
    if !names.contains(&"host") {
        return Err(Refusal::HostNotSigned);
    }
    Ok(names)
}

impl Signed {
    /// Reads the signature of a received request (its `Authorization` header, or its presigned
    /// query parameters) and builds the string to sign it covers.
    pub fn from_request(request: &HttpRequest<'_>) -> Result<Signed, Refusal> {
        let params = query_pairs(request.query);
        let param = |name: &str| -> Result<Option<String>, Refusal> {
            let mut found = params
                .iter()
                .filter(|(n, _)| n.as_slice() == name.as_bytes());
            let first = found.next();
            if found.next().is_some() {
                return Err(malformed(format!("the query names {name} twice")));
            }
            Ok(first.map(|(_, v)| String::from_utf8_lossy(v).into_owned()))
        };
        let authorization = single_header(request.headers, "authorization")?;
        let presigned_signature = param("X-Amz-Signature")?;
        let (credential_text, signed_text, signature_text, date_text, expires) = match (
            authorization,
            presigned_signature,
        ) {
            (Some(_), Some(_)) => {
                return Err(malformed(
                    "the request is signed twice, by its Authorization header and by X-Amz-Signature",
                ));
            }
            (Some(value), None) => {
                let (c, h, s) = authorization_parts(value)?;
                let date = single_header(request.headers, "x-amz-date")?
                    .ok_or_else(|| malformed("the request has no x-amz-date header"))?;
                (
                    c.to_owned(),
                    h.to_owned(),
                    s.to_owned(),
                    date.trim().to_owned(),
                    None,
                )
            }
            (None, Some(signature)) => {
                let algorithm = param("X-Amz-Algorithm")?.unwrap_or_default();
                if algorithm != ALGORITHM {
                    return Err(malformed(format!(
                        "X-Amz-Algorithm is {}, not {ALGORITHM}",
                        quote(&algorithm)
                    )));
                }
                let need = |name: &str| -> Result<String, Refusal> {
                    param(name)?
                        .ok_or_else(|| malformed(format!("the presigned URL has no {name}")))
                };
                let expires = need("X-Amz-Expires")?;
                let expires = expires
                        .parse::<i64>()
                        .ok()
                        .filter(|e| (1..=MAX_EXPIRES_SECONDS).contains(e))
                        .ok_or_else(|| {
                            malformed(format!(
                                "X-Amz-Expires {} is not a number of seconds from 1 to {MAX_EXPIRES_SECONDS} (7 days)",
                                quote(&expires)
                            ))
                        })?;
                (
                    need("X-Amz-Credential")?,
                    need("X-Amz-SignedHeaders")?,
                    signature,
                    need("X-Amz-Date")?,
                    Some(expires),
                )
            }
            (None, None) => {
                return Err(malformed(
                    "the request has neither an Authorization header nor X-Amz-Signature query parameters",
                ));
            }
        };
        let (access_key_id, date, region, service) = credential(&credential_text)?;
        let signed_at = amz_date(&date_text)?;
        if date_text.get(..8) != Some(date.as_str()) {
            return Err(Refusal::ScopeDate {
                scope: date,
                request: date_text,
            });
        }
        let names = signed_header_names(&signed_text)?;
        let signature = signature_bytes(&signature_text)?;
        let payload = request.payload_hash;
        if payload != UNSIGNED_PAYLOAD
            && !(payload.len() == 64
                && payload
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            return Err(malformed(format!(
                "payloadHash must be the body's SHA-256 in lowercase hex or {UNSIGNED_PAYLOAD}"
            )));
        }
        if let Some(content) = single_header(request.headers, "x-amz-content-sha256")?
            && content.trim() != payload
        {
            return Err(Refusal::PayloadHash);
        }
        // S3 never signs the payload of a presigned URL (Amazon S3 API Reference,
        // "Authenticating Requests: Using Query Parameters").
        let unsigned = HttpRequest {
            payload_hash: UNSIGNED_PAYLOAD,
            ..*request
        };
        let request = if expires.is_some() && service == "s3" {
            &unsigned
        } else {
            request
        };
        let canonical = canonical_request(request, &names, &service, expires.is_some())?;
        let scope = format!("{date}/{region}/{service}/{TERMINATOR}");
        Ok(Signed {
            string_to_sign: string_to_sign(&date_text, &scope, &canonical),
            access_key_id,
            date,
            region,
            service,
            signed_at,
            expires,
            signature,
        })
    }

    /// Reads a signature its service canonicalized itself (Yandex's `AccessKeySignature` with
    /// `v4Parameters`): the string to sign must be `AWS4-HMAC-SHA256`, the date of
    /// `signed_at`, the scope of that date, `region` and `service`, and a 64-digit hash.
    pub fn from_string_to_sign(
        access_key_id: &str,
        string_to_sign: &str,
        signature: &str,
        signed_at: i64,
        region: &str,
        service: &str,
    ) -> Result<Signed, Refusal> {
        if access_key_id.is_empty() {
            return Err(malformed("accessKeyId is empty"));
        }
        let lines: Vec<&str> = string_to_sign.split('\n').collect();
        let [algorithm, date_line, scope_line, hash] = lines.as_slice() else {
            return Err(malformed(
                "stringToSign is not four lines: algorithm, date, scope, canonical request hash",
            ));
        };
        if *algorithm != ALGORITHM {
            return Err(malformed(format!(
                "stringToSign's algorithm is {}, not {ALGORITHM}",
                quote(algorithm)
            )));
        }
        if amz_date(date_line)? != signed_at {
            return Err(malformed(format!(
                "stringToSign's date {} is not signedAt {}",
                quote(date_line),
                rfc3339(signed_at)
            )));
        }
        let scope: Vec<&str> = scope_line.split('/').collect();
        if let Some(last) = scope.last()
            && scope.len() >= 2
            && *last != TERMINATOR
        {
            return Err(Refusal::ScopeTerminator((*last).to_owned()));
        }
        let [date, scope_region, scope_service, _] = scope.as_slice() else {
            return Err(malformed(
                "stringToSign's scope is not <yyyymmdd>/<region>/<service>/aws4_request",
            ));
        };
        check_date(date)?;
        if date_line.get(..8) != Some(*date) {
            return Err(Refusal::ScopeDate {
                scope: (*date).to_owned(),
                request: (*date_line).to_owned(),
            });
        }
        if *scope_region != region || *scope_service != service {
            return Err(malformed(format!(
                "stringToSign's scope names region {} and service {}, v4Parameters region {} and service {}",
                quote(scope_region),
                quote(scope_service),
                quote(region),
                quote(service)
            )));
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(
                "stringToSign's last line is not a SHA-256 in hex",
            ));
        }
        Ok(Signed {
            access_key_id: access_key_id.to_owned(),
            date: (*date).to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_at,
            expires: None,
            string_to_sign: string_to_sign.to_owned(),
            signature: signature_bytes(signature)?,
        })
    }

    /// The string to sign the signature covers.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// Whether the signature's time fits `now`: within 15 minutes of it; for a presigned URL,
    /// not more than 15 minutes ahead and not expired.
    pub fn check_time(&self, now: i64) -> Result<(), Refusal> {
        let skewed = Refusal::Skewed {
            signed_at: self.signed_at,
            now,
        };
        match self.expires {
            None if (self.signed_at - now).abs() > MAX_SKEW_SECONDS => Err(skewed),
            Some(_) if self.signed_at - now > MAX_SKEW_SECONDS => Err(skewed),
            Some(expires) if now > self.signed_at + expires => Err(Refusal::Expired {
                expired_at: self.signed_at + expires,
                now,
            }),
            _ => Ok(()),
        }
    }

    /// Whether the signature is the one `secret` makes of the string to sign (compared in
    /// constant time).
    pub fn verify(&self, secret: &[u8]) -> Result<(), Refusal> {
        let key = signing_key(secret, &self.date, &self.region, &self.service);
        hmac::verify(&key, self.string_to_sign.as_bytes(), &self.signature)
            .map_err(|_| Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS Signature Version 4 test suite's credentials, scope and time.
    const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
    const AMZ_DATE: &str = "20150830T123600Z";
    /// 2015-08-30T12:36:00Z.
    const NOW: i64 = 1_440_938_160;
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    type Headers = Vec<(String, String)>;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        payload_hash: &'static str,
        signed_headers: &'static str,
        canonical_request: &'static str,
        string_to_sign_hash: &'static str,
        signature: &'static str,
    }

    /// From the AWS Signature Version 4 test suite (`aws-sig-v4-test-suite`): each case's
    /// request (`.req`), canonical request (`.creq`), string to sign (`.sts`, its last line)
    /// and signature (`.authz`).
    const VECTORS: &[Vector] = &[
        Vector {
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: "",
            headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", AMZ_DATE)],
            payload_hash: EMPTY_SHA256,
            signed_headers: "host;x-amz-date",
            canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            string_to_sign_hash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Vector {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", AMZ_DATE)],
            payload_hash: EMPTY_SHA256,
            signed_headers: "host;x-amz-date",
            canonical_request: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            string_to_sign_hash: "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Vector {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            path: "/",
            query: "",
            headers: &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", AMZ_DATE),
            ],
            // SHA-256 of the body `Param1=value1`.
            payload_hash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            signed_headers: "content-type;host;x-amz-date",
            canonical_request: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            string_to_sign_hash: "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
        Vector {
            name: "get-header-value-trim",
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\""),
                ("X-Amz-Date", AMZ_DATE),
            ],
            payload_hash: EMPTY_SHA256,
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            string_to_sign_hash: "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Vector {
            name: "get-header-key-duplicate",
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
                ("X-Amz-Date", AMZ_DATE),
            ],
            payload_hash: EMPTY_SHA256,
            signed_headers: "host;my-header1;x-amz-date",
            canonical_request: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            string_to_sign_hash: "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        },
    ];

    fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn the_aws_test_suite_vectors_canonicalize_sign_and_verify() {
        for v in VECTORS {
            let mut received = headers(v.headers);
            let names: Vec<&str> = v.signed_headers.split(';').collect();
            let request = HttpRequest {
                method: v.method,
                path: v.path,
                query: v.query,
                headers: &received,
                payload_hash: v.payload_hash,
            };
            let canonical = canonical_request(&request, &names, "service", false).unwrap();
            assert_eq!(
                canonical, v.canonical_request,
                "{}: canonical request",
                v.name
            );
            let sts = string_to_sign(
                AMZ_DATE,
                "20150830/us-east-1/service/aws4_request",
                &canonical,
            );
            assert_eq!(
                sts.rsplit('\n').next(),
                Some(v.string_to_sign_hash),
                "{}",
                v.name
            );
            assert_eq!(
                signature(SECRET, "20150830", "us-east-1", "service", &sts),
                v.signature,
                "{}: signature",
                v.name
            );
            // As a downstream service hands it over: the Authorization header among the rest.
            received.push((
                "Authorization".into(),
                authorization(v.signed_headers, v.signature),
            ));
            let request = HttpRequest {
                method: v.method,
                path: v.path,
                query: v.query,
                headers: &received,
                payload_hash: v.payload_hash,
            };
            let signed = Signed::from_request(&request).unwrap();
            assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
            assert_eq!(signed.string_to_sign(), sts, "{}", v.name);
            assert_eq!(signed.check_time(NOW), Ok(()));
            assert_eq!(signed.verify(SECRET), Ok(()), "{}", v.name);
            assert_eq!(
                signed.verify(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"),
                Err(Refusal::Mismatch),
                "{}: another secret",
                v.name
            );
        }
    }

    #[test]
    fn the_s3_example_of_the_s3_reference_verifies() {
        // "Authenticating Requests: Using the Authorization Header", example GET Object.
        let received = headers(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &received,
            payload_hash: EMPTY_SHA256,
        };
        let signed = Signed::from_request(&request).unwrap();
        assert_eq!(
            signed.string_to_sign(),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            signed.verify(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            Ok(())
        );
    }

    #[test]
    fn s3_paths_are_encoded_once_and_other_services_paths_normalized_and_encoded_again() {
        let cases = [
            (
                "s3 as received",
                "/bucket/my%20file.txt",
                "s3",
                "/bucket/my%20file.txt",
            ),
            (
                "s3 lowercase escapes",
                "/bucket/a%2fb",
                "s3",
                "/bucket/a%2Fb",
            ),
            (
                "s3 not normalized",
                "/bucket/./a//b/../c",
                "s3",
                "/bucket/./a//b/../c",
            ),
            ("s3 unreserved kept", "/b/-._~%7E", "s3", "/b/-._~~"),
            ("s3 empty", "", "s3", "/"),
            (
                "other encodes again",
                "/example%20space/",
                "service",
                "/example%2520space/",
            ),
            ("other normalized", "/a/./b/../c//d/", "service", "/a/c/d/"),
            ("other dot dot at the root", "/..", "service", "/"),
            ("other root", "/", "service", "/"),
        ];
        for (name, path, service, expected) in cases {
            assert_eq!(canonical_uri(path, service), expected, "{name}");
        }
    }

    #[test]
    fn query_parameters_are_decoded_encoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=1&a=0&c", false), "a=0&a=1&b=2&c=");
        assert_eq!(
            canonical_query("k=a%20b&k2=%E1%88%B4&s=a+b&t=~", false),
            "k=a%20b&k2=%E1%88%B4&s=a%2Bb&t=~"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
    }

    /// A request of the suite signed with the suite's secret, its Authorization header built
    /// from `signed_headers` and the `(name, value)` headers given.
    fn signed_request(
        extra: &[(&str, &str)],
        signed_headers: &str,
        date: &str,
        scope: &str,
    ) -> Vec<(String, String)> {
        let mut received = headers(&[("Host", "example.amazonaws.com"), ("X-Amz-Date", date)]);
        received.extend(headers(extra));
        let names: Vec<&str> = signed_headers.split(';').collect();
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &received,
            payload_hash: EMPTY_SHA256,
        };
        let canonical = canonical_request(&request, &names, "service", false).unwrap();
        let parts: Vec<&str> = scope.split('/').collect();
        let sts = string_to_sign(date, &parts[1..].join("/"), &canonical);
        let sig = signature(SECRET, parts[1], parts[2], parts[3], &sts);
        received.push((
            "Authorization".into(),
            format!(
                "{ALGORITHM} Credential={scope}, SignedHeaders={signed_headers}, Signature={sig}"
            ),
        ));
        received
    }

    fn read(received: &[(String, String)], payload_hash: &str) -> Result<Signed, Refusal> {
        Signed::from_request(&HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: received,
            payload_hash,
        })
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let good = signed_request(&[], "host;x-amz-date", AMZ_DATE, SCOPE);
        let signed = read(&good, EMPTY_SHA256).unwrap();
        assert_eq!(signed.verify(SECRET), Ok(()));
        let reason = |r: Result<Signed, Refusal>| r.map(|_| ()).map_err(|e| e.reason());
        // A tampered header value.
        let mut tampered = good.clone();
        tampered[0].1 = "evil.example.com".into();
        assert_eq!(
            read(&tampered, EMPTY_SHA256).unwrap().verify(SECRET),
            Err(Refusal::Mismatch)
        );
        // Another body.
        let other_body = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
        assert_eq!(
            read(&good, other_body).unwrap().verify(SECRET),
            Err(Refusal::Mismatch)
        );
        // Host not signed.
        let unsigned_host = signed_request(&[], "x-amz-date", AMZ_DATE, SCOPE);
        assert_eq!(
            reason(read(&unsigned_host, EMPTY_SHA256)),
            Err("host_not_signed")
        );
        // Scope date not the request's date.
        let other_day = signed_request(
            &[],
            "host;x-amz-date",
            AMZ_DATE,
            "AKIDEXAMPLE/20150831/us-east-1/service/aws4_request",
        );
        let refused = read(&other_day, EMPTY_SHA256).unwrap_err();
        assert_eq!(refused.reason(), "credential_scope_date");
        assert!(refused.to_string().contains("\"20150831\""), "{refused}");
        // Scope not ending with aws4_request.
        let terminator = signed_request(
            &[],
            "host;x-amz-date",
            AMZ_DATE,
            "AKIDEXAMPLE/20150830/us-east-1/service/aws5_request",
        );
        assert_eq!(
            reason(read(&terminator, EMPTY_SHA256)),
            Err("credential_scope_terminator")
        );
        // A signed content hash that is not the body's.
        let content = signed_request(
            &[("X-Amz-Content-Sha256", EMPTY_SHA256)],
            "host;x-amz-content-sha256;x-amz-date",
            AMZ_DATE,
            SCOPE,
        );
        assert!(read(&content, EMPTY_SHA256).is_ok());
        assert_eq!(
            reason(read(&content, other_body)),
            Err("payload_hash_mismatch")
        );
        assert_eq!(
            reason(read(&content, UNSIGNED_PAYLOAD)),
            Err("payload_hash_mismatch")
        );
        // Malformed, each way.
        let with = |f: &dyn Fn(&mut Headers)| {
            let mut r = good.clone();
            f(&mut r);
            reason(read(&r, EMPTY_SHA256))
        };
        let set_auth = |value: String| {
            move |r: &mut Vec<(String, String)>| {
                if let Some(last) = r.last_mut() {
                    last.1 = value.clone();
                }
            }
        };
        let malformed_cases: Vec<(&str, String)> = vec![
            ("another scheme", "AWS AKIDEXAMPLE:c2lnbmF0dXJl".into()),
            (
                "no signature",
                format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date"),
            ),
            (
                "short credential",
                format!(
                    "{ALGORITHM} Credential=AKIDEXAMPLE/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
                    "0".repeat(64)
                ),
            ),
            (
                "short signature",
                format!(
                    "{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature=abc"
                ),
            ),
            (
                "uppercase signed header",
                format!(
                    "{ALGORITHM} Credential={SCOPE}, SignedHeaders=Host;x-amz-date, Signature={}",
                    "0".repeat(64)
                ),
            ),
            (
                "signed header missing",
                format!(
                    "{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date;x-absent, Signature={}",
                    "0".repeat(64)
                ),
            ),
        ];
        for (name, value) in malformed_cases {
            assert_eq!(with(&set_auth(value)), Err("malformed_signature"), "{name}");
        }
        assert_eq!(
            with(&|r| r.retain(|(n, _)| n != "X-Amz-Date")),
            Err("malformed_signature"),
            "no date"
        );
        assert_eq!(
            with(&|r| r[1].1 = "2015-08-30T12:36:00Z".into()),
            Err("malformed_signature"),
            "date not basic ISO 8601"
        );
        assert_eq!(
            with(&|r| r.push(("authorization".into(), "x".into()))),
            Err("malformed_signature"),
            "two Authorization headers"
        );
        assert_eq!(
            with(&|r| r.clear()),
            Err("malformed_signature"),
            "nothing signed"
        );
        assert_eq!(
            reason(read(&good, "not-a-hash")),
            Err("malformed_signature")
        );
        // The refusals name what they compared but never the signature.
        let sig = good
            .last()
            .unwrap()
            .1
            .rsplit('=')
            .next()
            .unwrap()
            .to_owned();
        for refusal in [
            Refusal::Mismatch,
            Refusal::HostNotSigned,
            Refusal::PayloadHash,
        ] {
            assert!(!refusal.to_string().contains(&sig));
        }
    }

    #[test]
    fn times_are_within_15_minutes_and_presigned_urls_until_they_expire() {
        let good = signed_request(&[], "host;x-amz-date", AMZ_DATE, SCOPE);
        let signed = read(&good, EMPTY_SHA256).unwrap();
        assert_eq!(signed.check_time(NOW + 900), Ok(()));
        assert_eq!(signed.check_time(NOW - 900), Ok(()));
        let late = signed.check_time(NOW + 901).unwrap_err();
        assert_eq!(late.reason(), "request_time_skewed");
        assert!(
            late.to_string().contains("2015-08-30T12:36:00Z")
                && late.to_string().contains("2015-08-30T12:51:01Z"),
            "{late}"
        );
        assert!(signed.check_time(NOW - 901).is_err());
        let presigned = Signed {
            expires: Some(3600),
            ..signed
        };
        assert_eq!(presigned.check_time(NOW + 3600), Ok(()));
        assert_eq!(presigned.check_time(NOW - 900), Ok(()));
        assert_eq!(
            presigned.check_time(NOW - 901).map_err(|e| e.reason()),
            Err("request_time_skewed")
        );
        let expired = presigned.check_time(NOW + 3601).unwrap_err();
        assert_eq!(expired.reason(), "presigned_url_expired");
        assert!(
            expired.to_string().contains("2015-08-30T13:36:00Z"),
            "{expired}"
        );
    }

    #[test]
    fn presigned_urls_are_read_from_the_query() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host";
        let received = headers(&[("Host", "example.amazonaws.com")]);
        let unsigned = HttpRequest {
            method: "GET",
            path: "/",
            query,
            headers: &received,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let canonical = canonical_request(&unsigned, &["host"], "service", true).unwrap();
        assert_eq!(
            canonical,
            format!("GET\n/\n{query}\nhost:example.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD")
        );
        let sts = string_to_sign(
            AMZ_DATE,
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        let sig = signature(SECRET, "20150830", "us-east-1", "service", &sts);
        let full = format!("{query}&X-Amz-Signature={sig}");
        let request = HttpRequest {
            query: &full,
            ..unsigned
        };
        let signed = Signed::from_request(&request).unwrap();
        assert_eq!(signed.expires, Some(3600));
        assert_eq!(signed.verify(SECRET), Ok(()));
        let reason = |q: String| {
            Signed::from_request(&HttpRequest {
                query: &q,
                ..unsigned
            })
            .map(|_| ())
            .map_err(|e| e.reason())
        };
        assert_eq!(
            reason(full.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801")),
            Err("malformed_signature")
        );
        assert_eq!(
            reason(full.replace("X-Amz-Expires=3600", "X-Amz-Expires=0")),
            Err("malformed_signature")
        );
        assert_eq!(
            reason(full.replace("AWS4-HMAC-SHA256&", "AWS4-HMAC-SHA1&")),
            Err("malformed_signature")
        );
        assert_eq!(
            reason(format!("{full}&X-Amz-Signature={sig}")),
            Err("malformed_signature")
        );
        assert_eq!(
            reason(full.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date")),
            Err("host_not_signed")
        );
        let both = headers(&[
            ("Host", "example.amazonaws.com"),
            ("Authorization", &authorization("host", &sig)),
        ]);
        let refused = Signed::from_request(&HttpRequest {
            query: &full,
            headers: &both,
            ..unsigned
        })
        .unwrap_err();
        assert_eq!(refused.reason(), "malformed_signature");
    }

    #[test]
    fn a_string_to_sign_of_a_self_canonicalizing_service_is_checked_then_verified() {
        let sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let signed =
            Signed::from_string_to_sign("AKIDEXAMPLE", sts, sig, NOW, "us-east-1", "service")
                .unwrap();
        assert_eq!(signed.verify(SECRET), Ok(()));
        assert_eq!(
            signed.check_time(NOW + 1000).map_err(|e| e.reason()),
            Err("request_time_skewed")
        );
        let reason = |sts: &str, at: i64, region: &str| {
            Signed::from_string_to_sign("AKIDEXAMPLE", sts, sig, at, region, "service")
                .map(|_| ())
                .map_err(|e| e.reason())
        };
        assert_eq!(
            reason(sts, NOW + 1, "us-east-1"),
            Err("malformed_signature"),
            "signedAt is not the string's date"
        );
        assert_eq!(
            reason(sts, NOW, "eu-west-1"),
            Err("malformed_signature"),
            "another region"
        );
        assert_eq!(
            reason(
                &sts.replace("aws4_request", "aws5_request"),
                NOW,
                "us-east-1"
            ),
            Err("credential_scope_terminator")
        );
        assert_eq!(
            reason(&sts.replace("20150830/", "20150829/"), NOW, "us-east-1"),
            Err("credential_scope_date")
        );
        assert_eq!(
            reason(
                &sts.replace("AWS4-HMAC-SHA256\n", "AWS4-HMAC-SHA1\n"),
                NOW,
                "us-east-1"
            ),
            Err("malformed_signature")
        );
        assert_eq!(
            reason("AWS4-HMAC-SHA256\n20150830T123600Z", NOW, "us-east-1"),
            Err("malformed_signature")
        );
        let tampered = sts.replace("bb5797", "bb5798");
        let signed =
            Signed::from_string_to_sign("AKIDEXAMPLE", &tampered, sig, NOW, "us-east-1", "service")
                .unwrap();
        assert_eq!(signed.verify(SECRET), Err(Refusal::Mismatch));
    }

    #[test]
    fn debug_output_hides_the_signature() {
        let good = signed_request(&[], "host;x-amz-date", AMZ_DATE, SCOPE);
        let signed = read(&good, EMPTY_SHA256).unwrap();
        let shown = format!("{signed:?}");
        let sig = good
            .last()
            .unwrap()
            .1
            .rsplit('=')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            !shown.contains(&sig) && shown.contains("AKIDEXAMPLE"),
            "{shown}"
        );
    }
}
