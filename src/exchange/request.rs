//! The token-exchange request (RFC 8693 §2.1) as sent by Yandex Cloud clients: an
//! `application/x-www-form-urlencoded` body with `grant_type`, `requested_token_type`,
//! `audience` (the service account id), `subject_token` and `subject_token_type`, and optionally
//! `resource` (RFC 8707): the one service the minted token is for.
//!
//! Parsing is strict where the RFCs are: a parameter sent twice is an error (RFC 6749 §3.2:
//! "Request and response parameters MUST NOT be included more than once"), and so is a missing
//! one. It is lenient where real clients are sloppy: the token is trimmed (token files end with a
//! newline), unknown parameters such as `client_id` or `scope` are ignored.
//!
//! `resource` is the exception RFC 8707 §2 and RFC 8693 §2.1 make to the once-only rule: they let
//! a client send several. The gateway refuses several with `invalid_target`, since one token
//! carries one `aud` and a token naming several services would be accepted by each of them —
//! the very thing a target restricts. Whether the target is allowed is decided after the
//! signature check ([`super::authorize`]); here only its form is checked ([`check_resource`]).

use std::borrow::Cow;

use super::refusal::{ExchangeError, Reason, quote};

/// `grant_type` of RFC 8693 §2.1.
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The only `requested_token_type` the gateway issues (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `subject_token_type` for an OpenID Connect ID token (RFC 8693 §3).
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// `subject_token_type` for a JWT (RFC 8693 §3); Kubernetes tokens are JWTs, not ID tokens.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A parsed, syntactically valid token-exchange request. Nothing in it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The form `audience`: the id of the service account whose token is requested.
    pub audience: String,
    /// The caller's JWT, surrounding whitespace removed. Never log or echo it.
    pub subject_token: String,
    /// The RFC 8707 `resource`: the service the token is asked for, a well-formed absolute URI
    /// ([`check_resource`]). `None`: the gateway's default audience.
    pub resource: Option<String>,
}

/// The longest `resource` accepted, in bytes (as for federation audiences).
pub const MAX_RESOURCE_BYTES: usize = 255;

/// Checks the form RFC 8707 §2 gives a `resource`: "an absolute URI, as specified by Section
/// 4.3 of RFC 3986 [that] MUST NOT include a fragment component". The URI must be written in
/// RFC 3986 characters (no white space, controls, quotes or non-ASCII), since targets are
/// compared as exact strings and no normalisation is done. Used for the request parameter and
/// for the configured lists alike. The error says what is wrong, without the value.
pub fn check_resource(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > MAX_RESOURCE_BYTES {
        return Err("it is longer than 255 characters");
    }
    if value.contains('#') {
        return Err("it has a fragment");
    }
    let uri_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b);
    if !value.bytes().all(uri_char) {
        return Err("it has characters a URI cannot hold (white space, quotes, non-ASCII, …)");
    }
    let scheme = value.split_once(':').map(|(scheme, _)| scheme);
    let scheme_ok = scheme.is_some_and(|s| {
        s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    if !scheme_ok || url::Url::parse(value).is_err() {
        return Err("it is not an absolute URI (scheme:…)");
    }
    Ok(())
}

/// The parameters the gateway reads; each may appear at most once.
const KNOWN: [&str; 6] = [
    "grant_type",
    "requested_token_type",
    "audience",
    "subject_token",
    "subject_token_type",
    "actor_token",
];

/// The name-value pairs of an `application/x-www-form-urlencoded` body, decoded as
/// `form_urlencoded::parse` decodes them (`&`-separated, empty pairs skipped, a missing `=` an
/// empty value, `+` a space, percent escapes, invalid UTF-8 replaced), but borrowed from the
/// body wherever a name or value needs no decoding, which a token's always does not.
pub fn form_pairs(body: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let body = rest?;
        match memchr::memchr(b'&', body) {
            Some(at) => {
                rest = Some(&body[at + 1..]);
                Some(&body[..at])
            }
            None => {
                rest = None;
                Some(body)
            }
        }
    })
    .filter(|pair| !pair.is_empty())
    .map(|pair| match pair.iter().position(|&b| b == b'=') {
        Some(eq) => (form_decode(&pair[..eq]), form_decode(&pair[eq + 1..])),
        None => (form_decode(pair), Cow::Borrowed("")),
    })
}

/// One name or value of a form: borrowed when it has no `+`, no `%` and is UTF-8.
fn form_decode(raw: &[u8]) -> Cow<'_, str> {
    // memchr's search runs on vectors; a caller token (the longest value) never matches.
    let needs_decoding = memchr::memchr2(b'+', b'%', raw).is_some();
    if !needs_decoding && let Ok(text) = std::str::from_utf8(raw) {
        return Cow::Borrowed(text);
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// Parses a form body. The content type is checked by the HTTP layer.
pub fn parse_form(body: &[u8]) -> Result<TokenRequest, ExchangeError> {
    let mut values: [Option<Cow<'_, str>>; KNOWN.len()] = Default::default();
    // The first three `resource` values (enough to describe a refusal of several) and the count.
    let mut resources: Vec<String> = Vec::new();
    let mut resource_count = 0usize;
    for (name, value) in form_pairs(body) {
        if name == "resource" {
            resource_count += 1;
            if resources.len() < 3 {
                resources.push(value.into_owned());
            }
            continue;
        }
        let Some(slot) = KNOWN.iter().position(|k| *k == name) else {
            continue;
        };
        if values[slot].is_some() {
            return Err(ExchangeError::new(
                Reason::RepeatedParameter,
                format!("parameter {name} is included more than once (RFC 6749 §3.2)"),
            ));
        }
        values[slot] = Some(value);
    }
    let [
        grant_type,
        requested,
        audience,
        subject_token,
        subject_type,
        actor_token,
    ] = values;

    let grant_type = required(grant_type, "grant_type")?;
    if grant_type != GRANT_TYPE_TOKEN_EXCHANGE {
        return Err(ExchangeError::new(
            Reason::UnsupportedGrantType,
            format!(
                "grant_type {} is not supported; use {GRANT_TYPE_TOKEN_EXCHANGE}",
                quote(&grant_type)
            ),
        ));
    }
    // RFC 8693 makes requested_token_type optional; Yandex clients always send it.
    if let Some(requested) = requested
        && requested != TOKEN_TYPE_ACCESS_TOKEN
    {
        return Err(ExchangeError::new(
            Reason::UnsupportedTokenType,
            format!(
                "requested_token_type {} is not supported; only {TOKEN_TYPE_ACCESS_TOKEN} is issued",
                quote(&requested)
            ),
        ));
    }
    if actor_token.is_some() {
        return Err(ExchangeError::new(
            Reason::MalformedRequest,
            "actor_token is not supported: the gateway does impersonation, not delegation".into(),
        ));
    }
    let subject_type = required(subject_type, "subject_token_type")?;
    if subject_type != TOKEN_TYPE_ID_TOKEN && subject_type != TOKEN_TYPE_JWT {
        return Err(ExchangeError::new(
            Reason::UnsupportedTokenType,
            format!(
                "subject_token_type {} is not supported; use {TOKEN_TYPE_ID_TOKEN} or {TOKEN_TYPE_JWT}",
                quote(&subject_type)
            ),
        ));
    }
    let audience = required(audience, "audience")?;
    let audience = audience.trim();
    if audience.is_empty() {
        return Err(ExchangeError::new(
            Reason::MissingParameter,
            "parameter audience (the service account id) is empty".into(),
        ));
    }
    let subject_token = required(subject_token, "subject_token")?;
    let subject_token = subject_token.trim();
    if subject_token.is_empty() {
        return Err(ExchangeError::new(
            Reason::MissingParameter,
            "parameter subject_token is empty".into(),
        ));
    }
    let resource = single_resource(resources, resource_count)?;
    Ok(TokenRequest {
        audience: audience.to_owned(),
        subject_token: subject_token.to_owned(),
        resource,
    })
}

/// The one `resource` of the request, if any, well-formed.
fn single_resource(
    mut resources: Vec<String>,
    count: usize,
) -> Result<Option<String>, ExchangeError> {
    if count > 1 {
        let shown: Vec<String> = resources.iter().map(|r| quote(r)).collect();
        let more = if count > resources.len() { ", …" } else { "" };
        return Err(ExchangeError::new(
            Reason::SeveralResources,
            format!(
                "resource is included {} times ({}{more}); a token is minted for exactly one target, so ask for one token per resource",
                count,
                shown.join(", ")
            ),
        ));
    }
    let Some(resource) = resources.pop() else {
        return Ok(None);
    };
    match check_resource(&resource) {
        Ok(()) => Ok(Some(resource)),
        Err(why) => Err(ExchangeError::new(
            Reason::MalformedResource,
            format!(
                "resource {} is not an absolute URI without a fragment of at most {MAX_RESOURCE_BYTES} characters (RFC 8707 §2): {why}",
                quote(&resource)
            ),
        )),
    }
}

fn required<'a>(value: Option<Cow<'a, str>>, name: &str) -> Result<Cow<'a, str>, ExchangeError> {
    value.ok_or_else(|| {
        ExchangeError::new(
            Reason::MissingParameter,
            format!("parameter {name} is missing"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasons answered `invalid_request` (RFC 6749 §5.2).
    const INVALID_REQUEST: &[Reason] = &[
        Reason::MalformedRequest,
        Reason::MissingParameter,
        Reason::RepeatedParameter,
        Reason::UnsupportedTokenType,
    ];
    const UNSUPPORTED_GRANT_TYPE: &[Reason] = &[Reason::UnsupportedGrantType];

    const GOOD: &str = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience=ajeSA&subject_token=a.b.c&subject_token_type=urn:ietf:params:oauth:token-type:id_token";

    #[test]
    fn form_pairs_decode_as_form_urlencoded_does() {
        let fixed: [&[u8]; 14] = [
            b"",
            b"&&",
            b"a",
            b"a=",
            b"=b",
            b"a=b=c&d",
            b"a+b=c+d",
            b"a%20b=%2B%3D%26",
            b"x=%zz&y=%4",
            b"x=%C3%A9&y=\xc3\xa9",
            b"x=%FF%FE",
            b"x=\xff",
            b"t=eyJh.eyJz.c2ln&t2=a-b_c.d~",
            b"==&=&x==",
        ];
        // And bodies drawn from an alphabet of the characters that matter, a fixed seed.
        let alphabet: &[u8] = b"ab=&+%2F0\xc3\xa9\xff ";
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut drawn = Vec::new();
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let body: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 8 * 8)) as usize + i * 7) % alphabet.len()])
                .collect();
            drawn.push(body);
        }
        for body in fixed.iter().map(|b| b.to_vec()).chain(drawn) {
            let ours: Vec<(String, String)> = form_pairs(&body)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(&body)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, theirs, "body {:?}", String::from_utf8_lossy(&body));
        }
        // A token needs no decoding: it is borrowed from the body.
        let body = b"subject_token=eyJh.eyJz.c2ln";
        assert!(
            form_pairs(body).all(|(n, v)| matches!((n, v), (Cow::Borrowed(_), Cow::Borrowed(_))))
        );
    }

    #[test]
    fn parses_the_yandex_tutorial_body() {
        let req = parse_form(GOOD.as_bytes()).expect("valid");
        assert_eq!(req.audience, "ajeSA");
        assert_eq!(req.subject_token, "a.b.c");
        assert_eq!(req.resource, None, "no resource: the default audience");
    }

    #[test]
    fn takes_one_resource_as_written() {
        let cases = [
            (
                "https",
                "https://lockbox.example.com",
                "https://lockbox.example.com",
            ),
            (
                "percent-encoded, with path and query",
                "https%3A%2F%2Fapi.example%2Fv1%3Fx%3D1",
                "https://api.example/v1?x=1",
            ),
            ("a URN", "urn:example:lockbox", "urn:example:lockbox"),
            (
                "a trailing slash is kept: matching is exact",
                "https://lockbox.example.com/",
                "https://lockbox.example.com/",
            ),
        ];
        for (name, encoded, want) in cases {
            for body in [
                format!("{GOOD}&resource={encoded}"),
                format!("resource={encoded}&{GOOD}"),
            ] {
                let req = parse_form(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(req.resource.as_deref(), Some(want), "{name}");
            }
        }
    }

    #[test]
    fn refuses_several_or_malformed_resources_as_invalid_target() {
        let long = format!("https://x.example/{}", "a".repeat(240));
        let cases = [
            (
                "two",
                format!("{GOOD}&resource=https://a.example&resource=https://b.example"),
                Reason::SeveralResources,
                r#"2 times ("https://a.example", "https://b.example")"#,
            ),
            (
                "the same one twice",
                format!("{GOOD}&resource=https://a.example&resource=https://a.example"),
                Reason::SeveralResources,
                "exactly one",
            ),
            (
                "many, only three shown",
                format!("{GOOD}{}", "&resource=https://a.example".repeat(5)),
                Reason::SeveralResources,
                "5 times (\"https://a.example\", \"https://a.example\", \"https://a.example\", …)",
            ),
            (
                "empty",
                format!("{GOOD}&resource="),
                Reason::MalformedResource,
                "it is empty",
            ),
            (
                "relative",
                format!("{GOOD}&resource=/secrets"),
                Reason::MalformedResource,
                "not an absolute URI",
            ),
            (
                "a bare name",
                format!("{GOOD}&resource=lockbox"),
                Reason::MalformedResource,
                "\"lockbox\"",
            ),
            (
                "fragment",
                format!("{GOOD}&resource=https://a.example%23frag"),
                Reason::MalformedResource,
                "fragment",
            ),
            (
                "too long",
                format!("{GOOD}&resource={long}"),
                Reason::MalformedResource,
                "longer than 255",
            ),
            (
                "white space",
                format!("{GOOD}&resource=%20https://a.example"),
                Reason::MalformedResource,
                "characters",
            ),
            (
                "a quote",
                format!("{GOOD}&resource=https://a.example/%22"),
                Reason::MalformedResource,
                "characters",
            ),
            (
                "control character, quoted escaped",
                format!("{GOOD}&resource=https://a.example/%0A"),
                Reason::MalformedResource,
                r#""https://a.example/\n""#,
            ),
        ];
        for (name, body, reason, needle) in cases {
            let err = parse_form(body.as_bytes()).expect_err(name);
            assert_eq!(err.reason, reason, "{name}: {err:?}");
            assert!(
                err.description.contains(needle),
                "{name}: {}",
                err.description
            );
            assert!(
                !err.description.contains("a.b.c"),
                "{name} echoes the token"
            );
        }
    }

    #[test]
    fn request_errors_come_before_resource_errors() {
        let body = format!("{}&resource=x", GOOD.replace("&audience=ajeSA", ""));
        let err = parse_form(body.as_bytes()).expect_err("no audience");
        assert_eq!(err.reason, Reason::MissingParameter);
    }

    #[test]
    fn accepts_variants_real_clients_send() {
        let cases = [
            (
                "trailing newline in token",
                GOOD.replace("a.b.c", "a.b.c%0A"),
            ),
            ("jwt token type", GOOD.replace(":id_token", ":jwt")),
            (
                "unknown fields",
                format!("{GOOD}&client_id=x&scope=openid&resources=r"),
            ),
            (
                "no requested_token_type",
                GOOD.replace(
                    "&requested_token_type=urn:ietf:params:oauth:token-type:access_token",
                    "",
                ),
            ),
            ("percent-encoded", GOOD.replace(":", "%3A")),
        ];
        for (name, body) in cases {
            let req = parse_form(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(req.subject_token, "a.b.c", "{name}");
        }
    }

    #[test]
    fn rejects_each_malformed_request_with_its_own_error() {
        let cases = [
            (
                "repeated",
                format!("{GOOD}&audience=other"),
                INVALID_REQUEST,
                "more than once",
            ),
            (
                "repeated grant",
                format!("{GOOD}&grant_type=x"),
                INVALID_REQUEST,
                "grant_type",
            ),
            (
                "missing token",
                GOOD.replace("&subject_token=a.b.c", ""),
                INVALID_REQUEST,
                "subject_token is missing",
            ),
            (
                "empty token",
                GOOD.replace("subject_token=a.b.c", "subject_token=%20"),
                INVALID_REQUEST,
                "subject_token is empty",
            ),
            (
                "missing audience",
                GOOD.replace("&audience=ajeSA", ""),
                INVALID_REQUEST,
                "audience is missing",
            ),
            (
                "missing grant",
                GOOD.replace(
                    "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&",
                    "",
                ),
                INVALID_REQUEST,
                "grant_type is missing",
            ),
            (
                "wrong grant",
                GOOD.replace("grant-type:token-exchange", "grant-type:jwt-bearer"),
                UNSUPPORTED_GRANT_TYPE,
                "jwt-bearer",
            ),
            (
                "client credentials",
                GOOD.replace(
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                    "client_credentials",
                ),
                UNSUPPORTED_GRANT_TYPE,
                "client_credentials",
            ),
            (
                "wrong requested type",
                GOOD.replace("token-type:access_token", "token-type:refresh_token"),
                INVALID_REQUEST,
                "refresh_token",
            ),
            (
                "wrong subject type",
                GOOD.replace("token-type:id_token", "token-type:saml2"),
                INVALID_REQUEST,
                "saml2",
            ),
            (
                "missing subject type",
                GOOD.replace(
                    "&subject_token_type=urn:ietf:params:oauth:token-type:id_token",
                    "",
                ),
                INVALID_REQUEST,
                "subject_token_type is missing",
            ),
            (
                "actor token",
                format!("{GOOD}&actor_token=x.y.z"),
                INVALID_REQUEST,
                "actor_token",
            ),
            (
                "empty body",
                String::new(),
                INVALID_REQUEST,
                "grant_type is missing",
            ),
        ];
        for (name, body, code, needle) in cases {
            let err = parse_form(body.as_bytes()).expect_err(name);
            assert!(code.contains(&err.reason), "{name}: {err:?}");
            assert!(
                err.description.contains(needle),
                "{name}: {}",
                err.description
            );
            assert!(
                !err.description.contains("a.b.c"),
                "{name} echoes the token"
            );
        }
    }
}
