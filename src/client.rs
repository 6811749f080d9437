//! The client side of the exchange, for CI jobs and pods: `wif-gateway exchange`.
//!
//! It reads the caller's JWT from a file (a Kubernetes projected service-account token) or from
//! an environment variable (a GitLab `id_tokens` variable), posts it to `{url}/oauth/token` as an
//! RFC 8693 token exchange (the Yandex tutorial's form body) and hands over the access token: on
//! stdout, or in a file of mode 0600 replaced atomically ([`crate::files::write_private`]). With
//! `refresh` it keeps that file fresh until SIGTERM or SIGINT, re-reading the caller token before
//! every exchange, because Kubernetes rotates it.
//!
//! Failures fall in three classes, each with its exit status ([`ClientError::exit_code`]):
//!
//! | status | class | when |
//! |---|---|---|
//! | 1 | [`ClientError::Refused`] | HTTP 4xx other than 429 (an RFC 6749 error: `invalid_grant`, ...), a redirect, or a 2xx that is not a token response; never retried |
//! | 2 | [`ClientError::Local`] | bad options (including a `--refresh-margin` not below the token's lifetime and a `--url` scheme that does not match the server: `https` to plain HTTP, `http` to TLS), a missing or empty token file or variable, an unwritable `--out` |
//! | 3 | [`ClientError::Unavailable`] | connection errors, timeouts, HTTP 5xx (503 `temporarily_unavailable` when the caller's issuer cannot be reached) and 429 `slow_down`, still failing after the allowed attempts |
//!
//! Retries back off exponentially with jitter ([`Backoff::delay`]) and never wait less than the
//! answer's `Retry-After`. In refresh mode the first exchange is bounded like a one-shot run (a
//! pod with a wrong configuration fails at once); later failures never end the process: the old
//! token file stays, the failure is logged, and the exchange is retried with backoff.
//!
//! Neither the caller token nor the access token is ever logged or written to stderr; an error
//! description that happens to contain the caller token shows `[caller token]` instead. Nor is an
//! option value that looks like a token ([`looks_like_token`]), e.g. `--token-env "$WIF_TOKEN"`
//! (the token given instead of the variable's name): the error says what is wrong without it.
//!
//! The pure parts are separate functions with unit tests: [`clean_token`] (token reading),
//! [`parse_answer`], [`is_retryable_status`] and [`parse_retry_after`] (the retry decision),
//! [`Backoff::delay`] and [`refresh_delay`] (the schedules).

use std::fmt;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tokio::time::Instant;

use crate::exchange::request::{
    GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN,
};
use crate::report::error_chain;

/// The exit statuses, for the `--help` text of `wif-gateway exchange`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  the access token was printed or written; with --refresh: stopped by SIGTERM or SIGINT
  1  refused, not retryable: the gateway answered HTTP 4xx (other than 429), a redirect or
     something that is not a token response; stderr shows error, error_code, error_description
  2  usage or local error: bad options (e.g. --refresh-margin not below the access token's
     lifetime, a --url scheme that does not match the server: https:// to plain HTTP or
     http:// to TLS), token file missing or unreadable, empty token, --out not writable
  3  retryable: the gateway or the caller's issuer could not be reached or is temporarily
     unavailable (connection error, timeout, HTTP 5xx, 429) after --max-attempts attempts

Retries (exit 3 cases only) back off exponentially with jitter and honour Retry-After.
With --refresh, only the first exchange can end the process with 1, 2 or 3; later failures are
logged and retried while the previous token file stays in place.
Neither the caller token nor the access token is ever written to stderr, nor an option value
that looks like a token (e.g. --token-env \"$WIF_TOKEN\" instead of --token-env WIF_TOKEN).";

/// Default attempts per exchange in one-shot mode (and for the first exchange of refresh mode).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Largest caller token accepted from a file or variable (the gateway refuses over 16 KiB).
pub const MAX_TOKEN_FILE_BYTES: usize = 64 * 1024;
/// Largest answer body read from the gateway.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Longest `Retry-After` honoured; longer values are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The default refresh margin is at most this ...
pub const MAX_DEFAULT_MARGIN_SECS: u64 = 300;
/// ... and at least this.
pub const MIN_DEFAULT_MARGIN_SECS: u64 = 5;
/// Refreshes are never closer together than this, whatever the margin.
pub const MIN_REFRESH_DELAY: Duration = Duration::from_secs(1);
/// Access tokens never live this long (12 h, as Yandex Cloud IAM tokens), so a `--refresh-margin`
/// of this or more can never be below a token's lifetime and is refused when parsed.
pub const MAX_REFRESH_MARGIN_SECS: u64 = crate::signing::MAX_TOKEN_LIFETIME.unsigned_abs();
/// Longest error description shown; the rest is cut.
const MAX_SHOWN_CHARS: usize = 500;
/// How long [`probe_protocol`] waits for a connection and the first bytes of the reply.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest dot-free word that can look like an opaque token ([`looks_like_token`]).
pub const MIN_OPAQUE_TOKEN_CHARS: usize = 32;
/// What [`redact_tokens`] shows instead of a token-looking word.
pub const TOKEN_NOT_SHOWN: &str = "[token-like value not shown]";

/// What `wif-gateway exchange` was asked to do (its command-line options).
/// The options of `wif-gateway exchange` (also its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The gateway's base URL; the request goes to URL/oauth/token.
    #[arg(long, env = "WIF_URL")]
    pub url: String,
    /// The id of the service account whose access token is requested.
    #[arg(long, value_name = "ID", env = "WIF_SERVICE_ACCOUNT")]
    pub service_account: String,
    /// Ask for a token for this one service only (RFC 8707 `resource`, an absolute URI the
    /// gateway's configuration allows): the token's `aud` is then this URI, so other services
    /// refuse it. Without it, the gateway's default audience.
    #[arg(long, value_name = "URI", env = "WIF_RESOURCE")]
    pub resource: Option<String>,
    /// Read the caller JWT from this file (re-read before each refresh; surrounding white
    /// space is ignored), e.g. a Kubernetes projected service-account token.
    #[arg(long, value_name = "PATH", env = "WIF_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Read the caller JWT from the environment variable of this name, e.g. WIF_TOKEN for
    /// GitLab `id_tokens: WIF_TOKEN` (give the name, not the token).
    #[arg(long, value_name = "VAR", env = "WIF_TOKEN_ENV")]
    pub token_env: Option<String>,
    /// Write the access token to this file (mode 0600, replaced atomically) instead of
    /// printing it on stdout.
    #[arg(long, value_name = "PATH", env = "WIF_OUT")]
    pub out: Option<PathBuf>,
    /// Keep refreshing --out before the token expires, until SIGTERM or SIGINT (exit 0).
    #[arg(long, requires = "out")]
    pub refresh: bool,
    /// With --refresh: refresh this many seconds before expiry, less than the token's lifetime
    /// [default: 20 % of the lifetime, at most 300 and at least 5].
    #[arg(long, value_name = "SECONDS", requires = "refresh", value_parser = parse_refresh_margin)]
    pub refresh_margin: Option<u64>,
    /// Attempts per exchange before giving up with exit status 3.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

/// Whether a character belongs to a word of [`looks_like_token`]: base64url or `.`.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Whether one word (a run of base64url characters and dots) looks like a token: JWT-shaped,
/// or long and random-looking. See [`looks_like_token`].
fn is_token_word(word: &str) -> bool {
    let jwt_shaped = |word: &str| {
        let parts: Vec<&str> = word.split('.').collect();
        matches!(parts.len(), 3 | 5)
            && parts
                .first()
                .and_then(|header| URL_SAFE_NO_PAD.decode(header).ok())
                .is_some_and(|header| header.first() == Some(&b'{'))
    };
    // An unsecured JWS ends with its (empty) signature's dot; a sentence ends with a full stop.
    let trimmed = word.trim_matches('.');
    if jwt_shaped(word) || jwt_shaped(trimmed) {
        return true;
    }
    let word = trimmed;
    word.len() >= MIN_OPAQUE_TOKEN_CHARS
        && !word.contains('.')
        && word.bytes().any(|b| b.is_ascii_uppercase())
        && word.bytes().any(|b| b.is_ascii_lowercase())
        && word.bytes().any(|b| b.is_ascii_digit())
}

/// Whether `value` looks like a token rather than a name, a path or a URL, so that it must never
/// be echoed. `value` is cut into words, the runs of base64url characters (`A-Z a-z 0-9 - _`)
/// and dots; it looks like a token when one of its words (outer dots ignored)
///
/// - is JWT-shaped: 3 (JWS) or 5 (JWE) dot-separated parts whose first part is the base64url
///   of a JSON object (a JOSE header, `eyJ...`), or
/// - is an opaque secret: at least [`MIN_OPAQUE_TOKEN_CHARS`] characters without a dot, with
///   upper-case letters, lower-case letters and digits all present (random base64url or base62;
///   variable names in capitals, lower-case paths, hex digests and host names do not match).
pub fn looks_like_token(value: &str) -> bool {
    value.split(|c| !is_word_char(c)).any(is_token_word)
}

/// `text` with every word that looks like a token ([`looks_like_token`]) replaced by
/// [`TOKEN_NOT_SHOWN`]; the rest is unchanged.
pub fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_word_char) {
        let (before, from) = rest.split_at(start);
        let end = from.find(|c| !is_word_char(c)).unwrap_or(from.len());
        let (word, after) = from.split_at(end);
        out.push_str(before);
        out.push_str(if is_token_word(word) {
            TOKEN_NOT_SHOWN
        } else {
            word
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Refuses an option value that looks like a token, naming the option and what it takes instead
/// of showing the value.
fn not_a_token(option: &str, value: &str, takes: &str) -> Result<(), ClientError> {
    if looks_like_token(value) {
        return Err(ClientError::Local(format!(
            "{option} takes {takes}; the value given looks like a token (not shown)"
        )));
    }
    Ok(())
}

/// Parses `--refresh-margin`: whole seconds below [`MAX_REFRESH_MARGIN_SECS`]. Whether it is
/// below the token's lifetime is known only from the first answer ([`check_refresh_margin`]).
pub fn parse_refresh_margin(value: &str) -> Result<u64, String> {
    let seconds: u64 = value
        .trim()
        .parse()
        .map_err(|_| "not a whole number of seconds".to_owned())?;
    if seconds >= MAX_REFRESH_MARGIN_SECS {
        return Err(format!(
            "access tokens never live {MAX_REFRESH_MARGIN_SECS} s (12 h) or more, so the margin must be less"
        ));
    }
    Ok(seconds)
}

/// Refuses a `--refresh-margin` that is not below the lifetime of the first token: every refresh
/// would then follow the one before after [`MIN_REFRESH_DELAY`], one exchange a second.
pub fn check_refresh_margin(margin: Option<u64>, expires_in: u64) -> Result<(), ClientError> {
    match margin {
        Some(margin) if margin >= expires_in => Err(ClientError::Local(format!(
            "--refresh-margin {margin} is not below the access token's lifetime ({expires_in} s): \
             the token would be refreshed every second; give a margin below {expires_in} or leave \
             it out (default: {} s for this lifetime)",
            default_margin(expires_in)
        ))),
        _ => Ok(()),
    }
}

/// Where the caller JWT comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file, re-read before every exchange.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl TokenSource {
    /// The source named by exactly one of a file and a variable name.
    pub fn from_options(file: Option<PathBuf>, env: Option<String>) -> Result<Self, ClientError> {
        match (file, env) {
            (Some(path), None) => Ok(TokenSource::File(path)),
            (None, Some(name)) => Ok(TokenSource::Env(name)),
            (Some(_), Some(_)) => Err(ClientError::Local(
                "give either --token-file or --token-env, not both".into(),
            )),
            (None, None) => Err(ClientError::Local(
                "give --token-file PATH or --token-env VAR".into(),
            )),
        }
    }

    /// Reads and cleans the caller JWT ([`clean_token`]). When this fails and the file or
    /// variable name looks like a token ([`looks_like_token`]), the error says so instead of
    /// naming it: the token was given in place of the name.
    pub fn read(&self) -> Result<String, ClientError> {
        self.read_named()
            .map_err(|e| self.token_given_as_name().unwrap_or(e))
    }

    /// The error for a file or variable name that looks like a token, if it does.
    fn token_given_as_name(&self) -> Option<ClientError> {
        let message = match self {
            TokenSource::File(path) if looks_like_token(&path.to_string_lossy()) => {
                "--token-file (WIF_TOKEN_FILE) takes the path of a file holding the caller JWT; \
                 the value given looks like a token, not a path (not shown)"
            }
            TokenSource::Env(name) if looks_like_token(name) => {
                "--token-env (WIF_TOKEN_ENV) takes the NAME of an environment variable; the value \
                 given looks like a token itself (not shown); pass e.g. --token-env WIF_TOKEN"
            }
            _ => return None,
        };
        Some(ClientError::Local(message.into()))
    }

    fn read_named(&self) -> Result<String, ClientError> {
        let (raw, origin) = match self {
            TokenSource::File(path) => (
                read_token_file(path)?,
                format!("token file {}", path.display()),
            ),
            TokenSource::Env(name) => {
                let origin = format!("environment variable {name}");
                let value = std::env::var_os(name)
                    .ok_or_else(|| ClientError::Local(format!("{origin} is not set")))?;
                let value = value
                    .into_string()
                    .map_err(|_| ClientError::Local(format!("{origin} is not valid UTF-8")))?;
                (value, origin)
            }
        };
        clean_token(&raw, &origin)
    }
}

fn read_token_file(path: &Path) -> Result<String, ClientError> {
    let fail =
        |e: std::io::Error| ClientError::Local(format!("token file {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() > MAX_TOKEN_FILE_BYTES {
        return Err(ClientError::Local(format!(
            "token file {} is over {} KiB; it should hold one JWT",
            path.display(),
            MAX_TOKEN_FILE_BYTES / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        ClientError::Local(format!("token file {} is not valid UTF-8", path.display()))
    })
}

/// The caller JWT from raw file or variable text: surrounding white space removed (Kubernetes
/// projected tokens end with a newline). Refuses empty text, text over [`MAX_TOKEN_FILE_BYTES`] and
/// text with white space or control characters inside (one compact JWT has none). `origin`
/// names the source in the error, which never contains the text itself.
pub fn clean_token(raw: &str, origin: &str) -> Result<String, ClientError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(ClientError::Local(format!("{origin} is empty")));
    }
    if token.len() > MAX_TOKEN_FILE_BYTES {
        return Err(ClientError::Local(format!(
            "{origin} is over {} KiB; it should hold one JWT",
            MAX_TOKEN_FILE_BYTES / 1024
        )));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ClientError::Local(format!(
            "{origin} has white space or control characters inside; it should hold one JWT"
        )));
    }
    Ok(token.to_owned())
}

/// `{url}/oauth/token`, or `url` itself when its path already ends with `/oauth/token`. Only
/// `http` and `https` URLs without credentials are accepted.
pub fn token_endpoint(url: &str) -> Result<url::Url, ClientError> {
    if looks_like_token(url) {
        return Err(ClientError::Local(
            "--url takes the gateway's base URL, e.g. https://wif.example.com; the value given \
             looks like a token or contains one (not shown)"
                .into(),
        ));
    }
    let mut endpoint = url::Url::parse(url.trim())
        .map_err(|e| ClientError::Local(format!("--url {:?}: {e}", url.trim())))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(ClientError::Local(format!(
            "--url {:?}: the scheme must be http or https",
            url.trim()
        )));
    }
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        return Err(ClientError::Local(
            "--url must not contain credentials".into(),
        ));
    }
    if !endpoint.path().ends_with("/oauth/token") {
        let path = format!("{}/oauth/token", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
    }
    Ok(endpoint)
}

/// An access token from the gateway. Its `Debug` output hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token. Never log it.
    pub token: String,
    /// Seconds it lives from the answer (`expires_in`).
    pub expires_in: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// One failed attempt: what the gateway answered (or why it could not be asked) and whether
/// asking again may help.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failure {
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// RFC 6749 `error`, when the answer had an error body.
    pub error: Option<String>,
    /// The gateway's `error_code`.
    pub error_code: Option<String>,
    /// `error_description`, control characters escaped and cut.
    pub error_description: Option<String>,
    /// What else went wrong: a connection error, or why the answer is unusable.
    pub cause: Option<String>,
    /// 5xx, 429 and transport errors are retryable; nothing else is.
    pub retryable: bool,
    /// The answer's `Retry-After`, when it had a usable one.
    pub retry_after: Option<Duration>,
    /// The options cannot work (the `--url` scheme does not match the server, see `cause`): a
    /// configuration error, never retried.
    pub misconfigured: bool,
}

impl Failure {
    /// The error for a failure that is not retried (again) after `attempts` attempts:
    /// [`ClientError::Local`] for a misconfiguration, [`ClientError::Unavailable`] if it is
    /// retryable, else [`ClientError::Refused`].
    pub fn into_error(self, attempts: u32) -> ClientError {
        if self.misconfigured {
            ClientError::Local(self.cause.unwrap_or_else(|| "misconfigured".into()))
        } else if self.retryable {
            ClientError::Unavailable {
                attempts,
                last: self,
            }
        } else {
            ClientError::Refused(self)
        }
    }

    fn transport(cause: String) -> Self {
        Failure {
            cause: Some(cause),
            retryable: true,
            ..Failure::default()
        }
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(status) = self.status {
            fields.push(("status", format!("HTTP {status}")));
        }
        for (name, value) in [
            ("error", &self.error),
            ("error_code", &self.error_code),
            ("error_description", &self.error_description),
            ("cause", &self.cause),
        ] {
            if let Some(value) = value {
                fields.push((name, value.clone()));
            }
        }
        fields
    }

    fn report(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.fields() {
            write!(f, "\n  {name}: {value}")?;
        }
        Ok(())
    }
}

/// One line: `HTTP 503, error=temporarily_unavailable, error_code=issuer_unavailable, ...`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> = self
            .fields()
            .into_iter()
            .map(|(name, value)| match name {
                "status" => value,
                _ => format!("{name}={value}"),
            })
            .collect();
        f.write_str(&fields.join(", "))
    }
}

/// Why `wif-gateway exchange` failed. [`ClientError::exit_code`] gives its exit status and
/// `Display` the multi-line report for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Bad options or a local problem (token source, `--out`): exit 2.
    Local(String),
    /// The gateway refused, or answered something unusable: exit 1. Not retryable.
    Refused(Failure),
    /// Still unreachable or temporarily unavailable after `attempts` attempts: exit 3.
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Failure,
    },
}

impl ClientError {
    /// 1 refused, 2 local, 3 unavailable (retryable).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused(_) => 1,
            ClientError::Local(_) => 2,
            ClientError::Unavailable { .. } => 3,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Local(message) => f.write_str(message),
            ClientError::Refused(failure) => {
                f.write_str("the gateway refused the exchange (not retryable)")?;
                failure.report(f)
            }
            ClientError::Unavailable { attempts, last } => {
                let tries = if *attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                };
                write!(
                    f,
                    "the gateway or the caller's issuer is unreachable or temporarily unavailable after {attempts} {tries} (retryable: try again later)"
                )?;
                last.report(f)
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Whether an HTTP status is worth retrying: 5xx and 429.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// `Retry-After` in delta-seconds (RFC 9110 §10.2.3), cut to [`MAX_RETRY_AFTER`]. HTTP dates
/// and malformed values give `None` (the backoff alone applies).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: i64,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
}

/// Server text made safe to show: the caller token replaced, control characters escaped, cut at
/// [`MAX_SHOWN_CHARS`] characters.
fn sanitize(text: &str, subject_token: &str) -> String {
    let text = if subject_token.is_empty() {
        text.to_owned()
    } else {
        text.replace(subject_token, "[caller token]")
    };
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Classifies one answer of the token endpoint: a token, or a [`Failure`] that is retryable
/// exactly for 5xx and 429. `subject_token` is removed from any text shown.
pub fn parse_answer(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    subject_token: &str,
) -> Result<AccessToken, Failure> {
    if (200..300).contains(&status) {
        let unusable = |why: &str| Failure {
            status: Some(status),
            cause: Some(format!("the answer is not a token response: {why}")),
            ..Failure::default()
        };
        let answer: TokenAnswer = serde_json::from_slice(body)
            .map_err(|_| unusable("no JSON with access_token and expires_in"))?;
        if answer.access_token.trim().is_empty() {
            return Err(unusable("access_token is empty"));
        }
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(unusable(&format!(
                "token_type is {:?}, not Bearer",
                sanitize(kind, subject_token)
            )));
        }
        let expires_in = u64::try_from(answer.expires_in)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| unusable("expires_in is not positive"))?;
        return Ok(AccessToken {
            token: answer.access_token,
            expires_in,
        });
    }
    let retryable = is_retryable_status(status);
    let mut failure = Failure {
        status: Some(status),
        retryable,
        retry_after: if retryable {
            retry_after.and_then(parse_retry_after)
        } else {
            None
        },
        ..Failure::default()
    };
    match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(e) => {
            failure.error = Some(sanitize(&e.error, subject_token));
            failure.error_code = e.error_code.map(|c| sanitize(&c, subject_token));
            failure.error_description = e.error_description.map(|d| sanitize(&d, subject_token));
        }
        Err(_) => {
            failure.cause = Some(if (300..400).contains(&status) {
                "the gateway redirected the request; give the final URL in --url".into()
            } else if body.is_empty() {
                "the answer has no body".into()
            } else {
                "the answer is not an OAuth error (is --url the gateway?)".into()
            });
        }
    }
    Err(failure)
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay (before `Retry-After`).
    pub cap: Duration,
}

impl Backoff {
    /// For bounded exchanges: 0.5 s, 1 s, 2 s, 4 s, ... up to 30 s.
    pub const ONE_SHOT: Backoff = Backoff {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(30),
    };
    /// For failures during refresh: 1 s, 2 s, 4 s, ... up to 60 s.
    pub const REFRESH: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
    };

    /// The wait before retry number `retry` (1 for the first): `d = min(base·2^(retry−1), cap)`,
    /// jittered to `d/2 + jitter·d/2` ("equal jitter", `jitter` in `[0, 1)`), and never less
    /// than `retry_after` (which [`parse_retry_after`] already cut to [`MAX_RETRY_AFTER`]).
    pub fn delay(&self, retry: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        let full = self.base.saturating_mul(doubling).min(self.cap);
        let half = full / 2;
        let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
        jittered.max(retry_after.unwrap_or(Duration::ZERO))
    }
}

/// A random number in `[0, 1)` for [`Backoff::delay`].
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// The default refresh margin for a token living `lifetime` seconds: 20 % of it, at most
/// [`MAX_DEFAULT_MARGIN_SECS`] and at least [`MIN_DEFAULT_MARGIN_SECS`].
pub fn default_margin(lifetime: u64) -> u64 {
    (lifetime / 5).clamp(MIN_DEFAULT_MARGIN_SECS, MAX_DEFAULT_MARGIN_SECS)
}

/// How long after asking for a token living `expires_in` seconds to ask for the next one:
/// `expires_in − margin`, never less than [`MIN_REFRESH_DELAY`]. A margin that is not below
/// `expires_in` is replaced by the default one ([`check_refresh_margin`] refuses it for the first
/// token; a later, shorter-lived token must not make the refreshes continuous).
pub fn refresh_delay(expires_in: u64, margin: Option<u64>) -> Duration {
    let margin = margin
        .filter(|&m| m < expires_in)
        .unwrap_or_else(|| default_margin(expires_in));
    Duration::from_secs(expires_in.saturating_sub(margin)).max(MIN_REFRESH_DELAY)
}

/// Talks to one gateway's token endpoint for one service account.
#[derive(Debug, Clone)]
pub struct Exchanger {
    http: reqwest::Client,
    endpoint: url::Url,
    service_account: String,
    /// The RFC 8707 `resource` sent with every exchange, if any.
    resource: Option<String>,
}

impl Exchanger {
    /// A client for [`token_endpoint`]`(url)`. Redirects are not followed (a redirected POST
    /// would lose its body); connections time out after 10 s, requests after 30 s.
    pub fn new(url: &str, service_account: &str) -> Result<Self, ClientError> {
        let endpoint = token_endpoint(url)?;
        let service_account = service_account.trim();
        if service_account.is_empty() {
            return Err(ClientError::Local("--service-account is empty".into()));
        }
        not_a_token(
            "--service-account",
            service_account,
            "the id of a service account",
        )?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("wif-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Local(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Exchanger {
            http,
            endpoint,
            service_account: service_account.to_owned(),
            resource: None,
        })
    }

    /// Asks for tokens for `resource` only (`--resource`). Its form is checked here, as the
    /// gateway checks it, so that a typo fails before any request.
    pub fn for_resource(mut self, resource: &str) -> Result<Self, ClientError> {
        crate::exchange::request::check_resource(resource).map_err(|why| {
            ClientError::Local(format!(
                "--resource {resource:?} must be an absolute URI without a fragment of at most 255 characters: {why}"
            ))
        })?;
        self.resource = Some(resource.to_owned());
        Ok(self)
    }

    /// The URL posted to.
    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// The form body of the exchange (values URL-encoded).
    pub fn form(&self, subject_token: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", GRANT_TYPE_TOKEN_EXCHANGE)
            .append_pair("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN)
            .append_pair("audience", &self.service_account)
            .append_pair("subject_token", subject_token)
            .append_pair("subject_token_type", TOKEN_TYPE_ID_TOKEN);
        if let Some(resource) = &self.resource {
            form.append_pair("resource", resource);
        }
        form.finish()
    }

    /// One attempt, no retries.
    pub async fn exchange_once(&self, subject_token: &str) -> Result<AccessToken, Failure> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(self.form(subject_token))
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Err(self.transport_failure(&e).await),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(response).await.map_err(|e| Failure {
            status: Some(status),
            ..Failure::transport(format!("reading the answer: {}", error_chain(&e)))
        })?;
        parse_answer(status, retry_after.as_deref(), &body, subject_token)
    }

    /// The failure for a request that got no answer: retryable, unless the server speaks the
    /// other protocol than the URL's scheme says ([`Exchanger::scheme_mismatch`]; not asked
    /// after a timeout).
    async fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        if !e.is_timeout()
            && let Some(mismatch) = self.scheme_mismatch().await
        {
            return Failure {
                cause: Some(mismatch),
                misconfigured: true,
                ..Failure::default()
            };
        }
        Failure::transport(error_chain(e))
    }

    /// Why the `--url` scheme does not match the server at its host and port, if it does not:
    /// `https` to a server that answers plain HTTP, or `http` to one that speaks TLS
    /// ([`probe_protocol`]).
    pub async fn scheme_mismatch(&self) -> Option<String> {
        let port = self.endpoint.port_or_known_default()?;
        let host = match self.endpoint.host()? {
            url::Host::Domain(name) => name.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        let authority = format!("{}:{port}", self.endpoint.host_str()?);
        match (self.endpoint.scheme(), probe_protocol(&host, port).await?) {
            ("https", Protocol::PlainHttp) => Some(format!(
                "the --url scheme https:// does not match the server: {authority} answers plain \
                 HTTP, not TLS; use http://{authority}, or the address of the TLS proxy in front \
                 of the gateway"
            )),
            ("http", Protocol::Tls) => Some(format!(
                "the --url scheme http:// does not match the server: {authority} speaks TLS; use \
                 https://{authority}"
            )),
            _ => None,
        }
    }

    /// Reads the caller token once and exchanges it in at most `max_attempts` attempts,
    /// retrying only retryable failures.
    pub async fn exchange(
        &self,
        source: &TokenSource,
        max_attempts: u32,
    ) -> Result<AccessToken, ClientError> {
        let subject_token = source.read()?;
        let max_attempts = max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.exchange_once(&subject_token).await {
                Ok(token) => return Ok(token),
                Err(failure) if !failure.retryable || attempt >= max_attempts => {
                    return Err(failure.into_error(attempt));
                }
                Err(failure) => {
                    let wait = Backoff::ONE_SHOT.delay(attempt, jitter(), failure.retry_after);
                    tracing::warn!(
                        attempt,
                        max_attempts,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        failure = %failure,
                        "token exchange failed (retryable); retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// What a server speaks, as far as [`probe_protocol`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// It answered plain text HTTP.
    PlainHttp,
    /// It answered with a TLS record.
    Tls,
}

/// The protocol of a reply's first bytes: `HTTP/` is plain HTTP; a TLS record header (an alert or
/// a handshake, version 3.x) is TLS, e.g. a TLS server refusing plain text with an alert.
pub fn reply_protocol(head: &[u8]) -> Option<Protocol> {
    match head {
        [b'H', b'T', b'T', b'P', b'/', ..] => Some(Protocol::PlainHttp),
        [0x15 | 0x16, 0x03, ..] => Some(Protocol::Tls),
        _ => None,
    }
}

/// Connects to `host:port`, sends a plain `HEAD / HTTP/1.0` (nothing secret) and tells the
/// protocol from the first bytes of the reply ([`reply_protocol`]). `None` when it cannot tell:
/// no connection, no reply within [`PROBE_TIMEOUT`], or a reply of neither kind.
pub async fn probe_protocol(host: &str, port: u16) -> Option<Protocol> {
    use std::io::ErrorKind::WouldBlock;
    let probe = async {
        let stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let mut request: &[u8] = b"HEAD / HTTP/1.0\r\n\r\n";
        while !request.is_empty() {
            stream.writable().await.ok()?;
            match stream.try_write(request) {
                Ok(n) => request = request.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => return None,
            }
        }
        let mut head = [0u8; 5];
        let mut len = 0;
        while len < head.len() {
            if stream.readable().await.is_err() {
                break;
            }
            match stream.try_read(head.get_mut(len..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == WouldBlock => {}
                Err(_) => break,
            }
        }
        reply_protocol(head.get(..len).unwrap_or_default())
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            break;
        }
    }
    Ok(body)
}

/// A duration in whole seconds, rounded to the nearest, for logs.
fn rounded_secs(d: Duration) -> u64 {
    u64::try_from(d.as_millis().saturating_add(500) / 1000).unwrap_or(u64::MAX)
}

fn write_out(path: &Path, token: &AccessToken) -> Result<(), ClientError> {
    crate::files::write_private(path, &token.token)
        .map_err(|e| ClientError::Local(format!("--out {e}")))
}

/// Runs `wif-gateway exchange`: exchanges once and prints or writes the token or, with
/// `refresh`, keeps `out` fresh until `shutdown` completes (then `Ok`). `shutdown` is polled only
/// in refresh mode.
pub async fn run(options: &Options, shutdown: impl Future<Output = ()>) -> Result<(), ClientError> {
    let source = TokenSource::from_options(options.token_file.clone(), options.token_env.clone())?;
    let mut exchanger = Exchanger::new(&options.url, &options.service_account)?;
    if let Some(resource) = &options.resource {
        exchanger = exchanger.for_resource(resource)?;
    }
    if let Some(out) = &options.out {
        not_a_token(
            "--out",
            &out.to_string_lossy(),
            "the path of the file to write the access token to",
        )?;
    }
    let endpoint = exchanger.endpoint();
    if endpoint.scheme() == "http"
        && !matches!(endpoint.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        && !matches!(endpoint.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        && endpoint.host_str() != Some("localhost")
    {
        tracing::warn!(url = %endpoint, "--url is plain http to a non-loopback host: both tokens travel unencrypted");
    }
    match (&options.out, options.refresh) {
        (Some(out), true) => refresh(&exchanger, &source, out, options, shutdown).await,
        (None, true) => Err(ClientError::Local("--refresh requires --out".into())),
        (out, false) => {
            let token = exchanger.exchange(&source, options.max_attempts).await?;
            match out {
                Some(path) => {
                    write_out(path, &token)?;
                    tracing::info!(path = %path.display(), expires_in = token.expires_in, "access token written");
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{}", token.token)
                        .and_then(|()| stdout.flush())
                        .map_err(|e| ClientError::Local(format!("writing to stdout: {e}")))?;
                }
            }
            Ok(())
        }
    }
}

async fn refresh(
    exchanger: &Exchanger,
    source: &TokenSource,
    out: &Path,
    options: &Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClientError> {
    tokio::pin!(shutdown);
    let mut started = Instant::now();
    let first = tokio::select! {
        result = exchanger.exchange(source, options.max_attempts) => result?,
        () = &mut shutdown => return Ok(()),
    };
    check_refresh_margin(options.refresh_margin, first.expires_in)?;
    write_out(out, &first)?;
    let mut next = started + refresh_delay(first.expires_in, options.refresh_margin);
    tracing::info!(
        path = %out.display(),
        expires_in = first.expires_in,
        next_refresh_in_s = rounded_secs(next.saturating_duration_since(Instant::now())),
        "access token written; refreshing until SIGTERM or SIGINT"
    );
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = &mut shutdown => return Ok(()),
        }
        started = Instant::now();
        let attempt = async {
            let subject_token = source.read()?;
            let token = exchanger
                .exchange_once(&subject_token)
                .await
                .map_err(|failure| failure.into_error(1))?;
            write_out(out, &token)?;
            Ok::<_, ClientError>(token)
        };
        let result = tokio::select! {
            result = attempt => result,
            () = &mut shutdown => return Ok(()),
        };
        match result {
            Ok(token) => {
                failures = 0;
                if let Err(e) = check_refresh_margin(options.refresh_margin, token.expires_in) {
                    tracing::warn!(problem = %e, "the access token's lifetime shrank; refreshing with the default margin");
                }
                next = started + refresh_delay(token.expires_in, options.refresh_margin);
                tracing::info!(
                    path = %out.display(),
                    expires_in = token.expires_in,
                    next_refresh_in_s = rounded_secs(next.saturating_duration_since(Instant::now())),
                    "access token refreshed"
                );
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let retry_after = match &e {
                    ClientError::Unavailable { last, .. } => last.retry_after,
                    _ => None,
                };
                let wait = Backoff::REFRESH.delay(failures, jitter(), retry_after);
                next = Instant::now() + wait;
                let (kind, detail) = match &e {
                    ClientError::Local(message) => ("local", message.clone()),
                    ClientError::Refused(failure) => ("refused", failure.to_string()),
                    ClientError::Unavailable { last, .. } => ("retryable", last.to_string()),
                };
                tracing::error!(
                    failures,
                    kind,
                    failure = %detail,
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    path = %out.display(),
                    "token refresh failed; the previous token file is kept"
                );
            }
        }
    }
}

/// The whole subcommand for `main`: runs [`run`] on a new runtime, prints a failure to stderr
/// (`error: ...`) and returns the exit status ([`EXIT_STATUS_HELP`]).
pub fn main(options: &Options, shutdown: impl Future<Output = ()>) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Local(format!("starting the runtime: {e}")))
        .and_then(|runtime| runtime.block_on(run(options, shutdown)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_empty_or_odd_text_is_refused() {
        assert_eq!(clean_token("a.b.c\n", "f").unwrap(), "a.b.c");
        assert_eq!(clean_token("  \r\n a.b.c \t\n", "f").unwrap(), "a.b.c");
        let refused = |raw: &str, origin: &str| {
            let e = clean_token(raw, origin).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        };
        assert_eq!(refused("", "token file x"), "token file x is empty");
        assert_eq!(refused(" \n\n", "f"), "f is empty");
        let inside = refused("Bearer a.b.c", "f");
        assert!(inside.contains("white space"), "{inside}");
        assert!(!inside.contains("a.b.c"), "the token is never echoed");
        assert!(clean_token("a.b\u{0}.c", "f").is_err());
        let big = "a".repeat(MAX_TOKEN_FILE_BYTES + 1);
        assert!(refused(&big, "f").contains("KiB"));
    }

    /// A JWT-shaped value (ES256 header, a payload, a signature), as CI jobs hold them.
    const JWT: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6ZGVtby9hcHAifQ.MEUCIQDkR3Jm9aVx2Tq7Lw1cZbN4uYh8sPfGd6oEiKjWxAnBgQ";

    #[test]
    fn token_looking_values_are_recognised() {
        for token in [
            JWT,
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            // JWE: five parts.
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVy.dGFn",
            // Opaque secrets: random base62 or base64url, 32 characters or more.
            "ghp_d4nnFzLoFnyEcxOK6kXUunK48WwfH9HxEUXX",
            "Zm9vYmFyYmF6cXV4-_quux0123456789AbCdEfGh",
            // A token inside a longer value.
            &format!("Bearer {JWT}"),
            &format!("https://gw.example/{JWT}"),
            &format!("/tmp/{JWT}"),
        ] {
            assert!(looks_like_token(token), "{token}");
        }
        for name in [
            "WIF_TOKEN",
            "GITLAB_OIDC_TOKEN_FOR_PRODUCTION_DEPLOY_V2",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/home/runner/work/_temp/OidcToken2.txt",
            "https://wif.example.com/oauth/token",
            "http://127.0.0.1:8080",
            "ajesa0000000000001",
            "a.b.c",
            "one.two.three",
            "3f9e1c7a8b2d4e6f0a1b2c3d4e5f6a7b8c9d0e1f",
            "550e8400-e29b-41d4-a716-446655440000",
            "run/secrets/access-token",
            "",
        ] {
            assert!(!looks_like_token(name), "{name}");
        }
    }

    #[test]
    fn redaction_replaces_only_token_looking_words() {
        let text = format!("error: unexpected argument '{JWT}' found; --url 'http://x/{JWT}.'");
        let shown = redact_tokens(&text);
        assert_eq!(
            shown,
            format!(
                "error: unexpected argument '{TOKEN_NOT_SHOWN}' found; --url 'http://x/{TOKEN_NOT_SHOWN}'"
            )
        );
        let plain = "error: invalid value 'x' for '--max-attempts <N>': 0 is not in 1..=100\n";
        assert_eq!(redact_tokens(plain), plain);
        assert_eq!(redact_tokens(""), "");
    }

    #[test]
    fn a_token_given_as_a_name_is_not_echoed() {
        for source in [
            TokenSource::Env(JWT.into()),
            TokenSource::File(PathBuf::from(JWT)),
        ] {
            let e = source.read().unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(text.contains("looks like a token"), "{text}");
            assert!(!text.contains(&JWT[..16]), "{text}");
        }
        let e = Exchanger::new("http://127.0.0.1:1", JWT).unwrap_err();
        assert!(e.to_string().contains("--service-account takes"), "{e}");
        assert!(!e.to_string().contains(&JWT[..16]));
        let e = token_endpoint(JWT).unwrap_err().to_string();
        assert!(e.contains("--url takes"), "{e}");
        assert!(!e.contains(&JWT[..16]));
    }

    #[test]
    fn token_files_are_read_again_each_time_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let source = TokenSource::File(path.clone());
        let missing = source.read().unwrap_err();
        assert_eq!(missing.exit_code(), 2);
        assert!(missing.to_string().contains("token file"), "{missing}");
        std::fs::write(&path, "one.two.three\n").unwrap();
        assert_eq!(source.read().unwrap(), "one.two.three");
        std::fs::write(&path, "four.five.six").unwrap();
        assert_eq!(source.read().unwrap(), "four.five.six");
        std::fs::write(&path, "\n").unwrap();
        assert!(source.read().unwrap_err().to_string().contains("is empty"));
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_FILE_BYTES + 10]).unwrap();
        assert!(source.read().unwrap_err().to_string().contains("KiB"));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(source.read().unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn token_variables_must_be_set() {
        let source = TokenSource::Env("WIF_CLIENT_TEST_SURELY_UNSET_VARIABLE".into());
        let e = source.read().unwrap_err();
        assert_eq!(
            e,
            ClientError::Local(
                "environment variable WIF_CLIENT_TEST_SURELY_UNSET_VARIABLE is not set".into()
            )
        );
        assert!(TokenSource::from_options(None, None).is_err());
        assert!(TokenSource::from_options(Some("a".into()), Some("B".into())).is_err());
        assert_eq!(
            TokenSource::from_options(None, Some("B".into())).unwrap(),
            TokenSource::Env("B".into())
        );
    }

    #[test]
    fn the_endpoint_is_the_token_path_of_the_base_url() {
        let e = |u: &str| token_endpoint(u).map(|u| u.to_string());
        assert_eq!(
            e("https://gw.example").unwrap(),
            "https://gw.example/oauth/token"
        );
        assert_eq!(
            e("https://gw.example/").unwrap(),
            "https://gw.example/oauth/token"
        );
        assert_eq!(
            e("https://gw.example/wif/").unwrap(),
            "https://gw.example/wif/oauth/token"
        );
        assert_eq!(
            e("http://127.0.0.1:8080/oauth/token").unwrap(),
            "http://127.0.0.1:8080/oauth/token"
        );
        assert!(e("ftp://gw.example").is_err());
        assert!(e("gw.example").is_err());
        assert!(e("https://user:pw@gw.example").is_err());
    }

    #[test]
    fn the_form_body_is_url_encoded() {
        let x = Exchanger::new("http://127.0.0.1:1", " sa+1 ").unwrap();
        let form = x.form("a.b+/=.c");
        assert_eq!(
            form,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &audience=sa%2B1\
             &subject_token=a.b%2B%2F%3D.c\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token"
        );
        let parsed = crate::exchange::request::parse_form(form.as_bytes()).unwrap();
        assert_eq!(parsed.audience, "sa+1");
        assert_eq!(parsed.subject_token, "a.b+/=.c");
        assert!(Exchanger::new("http://127.0.0.1:1", " ").is_err());
        assert_eq!(parsed.resource, None, "no --resource: no parameter");

        let x = x.for_resource("https://lockbox.example/v1?a=b").unwrap();
        let form = x.form("a.b.c");
        assert!(
            form.ends_with("&resource=https%3A%2F%2Flockbox.example%2Fv1%3Fa%3Db"),
            "{form}"
        );
        let parsed = crate::exchange::request::parse_form(form.as_bytes()).unwrap();
        assert_eq!(
            parsed.resource.as_deref(),
            Some("https://lockbox.example/v1?a=b")
        );
        for bad in ["lockbox", "https://a.example#f", ""] {
            let x = Exchanger::new("http://127.0.0.1:1", "sa").unwrap();
            let e = x.for_resource(bad).unwrap_err();
            assert!(e.to_string().contains("--resource"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_5xx_and_429_are_retried() {
        for status in [429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 405, 413, 415, 428, 430, 600] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_delta_seconds_capped() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn answers_are_classified() {
        let ok = br#"{"access_token":"at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
        let token = parse_answer(200, None, ok, "jwt").unwrap();
        assert_eq!(token.token, "at");
        assert_eq!(token.expires_in, 3600);
        assert!(
            !format!("{token:?}").contains("\"at\""),
            "Debug hides the token"
        );

        for bad in [
            &br#"{"access_token":"","expires_in":3600}"#[..],
            br#"{"access_token":"at"}"#,
            br#"{"access_token":"at","expires_in":0}"#,
            br#"{"access_token":"at","expires_in":60,"token_type":"mac"}"#,
            b"<html>ok</html>",
        ] {
            let f = parse_answer(200, None, bad, "jwt").unwrap_err();
            assert!(!f.retryable);
            assert!(f.cause.unwrap().contains("not a token response"));
        }

        let refused = br#"{"error":"invalid_grant","error_description":"the token expired","error_code":"token_expired"}"#;
        let f = parse_answer(400, Some("5"), refused, "jwt").unwrap_err();
        assert!(!f.retryable, "400 is never retried");
        assert_eq!(f.retry_after, None);
        assert_eq!(f.status, Some(400));
        assert_eq!(f.error.as_deref(), Some("invalid_grant"));
        assert_eq!(f.error_code.as_deref(), Some("token_expired"));
        assert_eq!(f.error_description.as_deref(), Some("the token expired"));
        assert_eq!(
            f.to_string(),
            "HTTP 400, error=invalid_grant, error_code=token_expired, error_description=the token expired"
        );

        let unavailable = br#"{"error":"temporarily_unavailable","error_description":"issuer down","error_code":"issuer_unavailable"}"#;
        let f = parse_answer(503, Some("5"), unavailable, "jwt").unwrap_err();
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(f.error_code.as_deref(), Some("issuer_unavailable"));

        let slow = br#"{"error":"slow_down","error_description":"retry in 3s","error_code":"rate_limited"}"#;
        let f = parse_answer(429, Some("3"), slow, "jwt").unwrap_err();
        assert!(f.retryable);
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));

        let f = parse_answer(502, None, b"<html>bad gateway</html>", "jwt").unwrap_err();
        assert!(f.retryable);
        assert!(f.cause.unwrap().contains("not an OAuth error"));
        let f = parse_answer(503, None, b"", "jwt").unwrap_err();
        assert!(f.retryable);
        assert_eq!(f.cause.as_deref(), Some("the answer has no body"));
        let f = parse_answer(404, None, b"not found", "jwt").unwrap_err();
        assert!(!f.retryable);
        let f = parse_answer(302, None, b"", "jwt").unwrap_err();
        assert!(!f.retryable);
        assert!(f.cause.unwrap().contains("redirected"));
    }

    #[test]
    fn sanitized_text_never_contains_the_caller_token() {
        let body = br#"{"error":"invalid_grant","error_description":"bad token a.b.c\n\u001b[31m","error_code":"malformed_token"}"#;
        let f = parse_answer(400, None, body, "a.b.c").unwrap_err();
        let d = f.error_description.unwrap();
        assert_eq!(d, "bad token [caller token]\\n\\u{1b}[31m");
        let long = format!(
            r#"{{"error":"x","error_description":"{}"}}"#,
            "y".repeat(2000)
        );
        let f = parse_answer(400, None, long.as_bytes(), "jwt").unwrap_err();
        assert_eq!(
            f.error_description.unwrap().chars().count(),
            MAX_SHOWN_CHARS + 1
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let b = Backoff::ONE_SHOT;
        assert_eq!(b.delay(1, 0.0, None), Duration::from_millis(250));
        assert_eq!(b.delay(1, 0.999_999, None).as_millis(), 499);
        assert_eq!(b.delay(2, 0.0, None), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.5, None), Duration::from_millis(1500));
        assert_eq!(b.delay(4, 1.0, None), Duration::from_secs(4));
        assert_eq!(b.delay(20, 1.0, None), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX, 1.0, None), Duration::from_secs(30));
        assert_eq!(b.delay(20, 0.0, None), Duration::from_secs(15));
        assert_eq!(
            b.delay(1, 0.5, Some(Duration::from_secs(5))),
            Duration::from_secs(5),
            "Retry-After is a floor"
        );
        assert_eq!(
            b.delay(10, 1.0, Some(Duration::from_secs(1))),
            Duration::from_secs(30)
        );
        // The one-shot worst case with the default attempts: 0.5 + 1 + 2 + 4 s.
        let total: Duration = (1..DEFAULT_MAX_ATTEMPTS)
            .map(|r| b.delay(r, 1.0, None))
            .sum();
        assert_eq!(total, Duration::from_millis(7500));
        assert_eq!(
            Backoff::REFRESH.delay(7, 1.0, None),
            Duration::from_secs(60)
        );
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn refreshes_happen_a_margin_before_expiry() {
        assert_eq!(default_margin(3600), 300);
        assert_eq!(default_margin(1000), 200);
        assert_eq!(default_margin(60), 12);
        assert_eq!(default_margin(10), 5);
        assert_eq!(default_margin(0), 5);
        assert_eq!(refresh_delay(3600, None), Duration::from_secs(3300));
        assert_eq!(refresh_delay(43_200, None), Duration::from_secs(42_900));
        assert_eq!(refresh_delay(60, None), Duration::from_secs(48));
        assert_eq!(refresh_delay(60, Some(58)), Duration::from_secs(2));
        assert_eq!(refresh_delay(60, Some(0)), Duration::from_secs(60));
        assert_eq!(refresh_delay(60, Some(59)), MIN_REFRESH_DELAY);
        assert_eq!(
            refresh_delay(60, Some(60)),
            Duration::from_secs(48),
            "a margin not below the lifetime gives way to the default"
        );
        assert_eq!(refresh_delay(60, Some(600)), Duration::from_secs(48));
        assert_eq!(refresh_delay(3, None), MIN_REFRESH_DELAY);
    }

    #[test]
    fn a_margin_not_below_the_lifetime_is_refused() {
        assert_eq!(parse_refresh_margin("58"), Ok(58));
        assert_eq!(parse_refresh_margin("0"), Ok(0));
        assert_eq!(parse_refresh_margin("43199"), Ok(43_199));
        assert!(parse_refresh_margin("43200").unwrap_err().contains("12 h"));
        assert!(parse_refresh_margin("-1").is_err());
        assert!(parse_refresh_margin("1.5").is_err());
        assert!(check_refresh_margin(None, 60).is_ok());
        assert!(check_refresh_margin(Some(59), 60).is_ok());
        for margin in [60, 61, 3600] {
            let e = check_refresh_margin(Some(margin), 60).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "--refresh-margin {margin} is not below the access token's lifetime (60 s)"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_map_to_exit_codes_and_say_whether_to_retry() {
        let failure = Failure {
            status: Some(503),
            error: Some("temporarily_unavailable".into()),
            error_code: Some("issuer_unavailable".into()),
            error_description: Some("down".into()),
            retryable: true,
            ..Failure::default()
        };
        let e = ClientError::Unavailable {
            attempts: 5,
            last: failure.clone(),
        };
        assert_eq!(e.exit_code(), 3);
        let text = e.to_string();
        assert!(text.contains("after 5 attempts (retryable"), "{text}");
        assert!(
            text.contains("\n  error_code: issuer_unavailable"),
            "{text}"
        );
        let e = ClientError::Refused(Failure {
            status: Some(400),
            retryable: false,
            ..failure
        });
        assert_eq!(e.exit_code(), 1);
        let text = e.to_string();
        assert!(text.starts_with("the gateway refused the exchange (not retryable)"));
        assert!(text.contains("\n  status: HTTP 400\n  error: temporarily_unavailable"));
        assert_eq!(ClientError::Local("x".into()).exit_code(), 2);
        let e = Failure {
            cause: Some("the --url scheme https:// does not match the server".into()),
            misconfigured: true,
            ..Failure::default()
        }
        .into_error(1);
        assert_eq!(
            e,
            ClientError::Local("the --url scheme https:// does not match the server".into())
        );
    }

    #[test]
    fn replies_tell_plain_http_from_tls() {
        assert_eq!(reply_protocol(b"HTTP/"), Some(Protocol::PlainHttp));
        assert_eq!(
            reply_protocol(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(Protocol::PlainHttp)
        );
        // A fatal decode_error alert (TLS 1.2 record), as rustls sends for plain text.
        assert_eq!(
            reply_protocol(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            Some(Protocol::Tls)
        );
        assert_eq!(reply_protocol(&[0x16, 0x03, 0x01]), Some(Protocol::Tls));
        assert_eq!(reply_protocol(b""), None);
        assert_eq!(reply_protocol(b"HTT"), None);
        assert_eq!(reply_protocol(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(reply_protocol(&[0x15, 0x02]), None);
    }
}
