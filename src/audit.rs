//! The audit log: one JSON line per exchange (allowed or denied), per IAM API call that changes
//! something, per configuration reload and per signing-key change, to stdout or a file. It
//! records who asked for what and what was decided, and the SHA-256 of a minted token — never a
//! token or a key.
//!
//! Lines are appended to an in-memory buffer that a writer thread flushes every
//! [`FLUSH_INTERVAL`] (and on shutdown, [`Audit::flush`]). Nothing wakes the writer per event:
//! on a busy single core, a wake-up per exchange cost more than the exchange's own parsing. A
//! slow disk never stalls an exchange; past [`MAX_BUFFERED`] bytes, events are dropped and
//! counted (`wif_gateway_audit_events_dropped_total`).

use std::io::Write as _;
use std::path::PathBuf;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::exchange::{Issued, Refused};
use crate::json::{member, member_i64};

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Off,
    Stdout,
    File(PathBuf),
}

/// One exchange, as audited.
#[derive(Debug, Default, Serialize)]
pub struct ExchangeEvent<'a> {
    pub request_id: &'a str,
    pub client: &'a str,
    /// `allow` or `deny`.
    pub decision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// The refusal in words: the failing rule and the presented values (never a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<&'a str>,
    /// The requested service account (the form `audience`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<&'a str>,
    /// The RFC 8707 `resource` asked for: on an allow, the minted token's `aud`; absent when the
    /// request named none (the token has the default audience).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    /// The caller token's `iss`, `sub`, `jti`, `kid`, `alg`. On a denial they are as presented,
    /// possibly forged (`verified: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<&'a str>,
    pub verified: bool,
    /// Hex SHA-256 of the minted access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<&'a str>,
    /// `jti` of the minted access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_kid: Option<&'a str>,
}

/// Who asked: the request's id and the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub request_id: &'a str,
    pub client: &'a str,
}

impl<'a> ExchangeEvent<'a> {
    /// The audit line of an issued token.
    pub fn issued(caller: Caller<'a>, issued: &'a Issued, token_sha256: &'a str) -> Self {
        let g = &issued.grant;
        ExchangeEvent {
            request_id: caller.request_id,
            client: caller.client,
            decision: "allow",
            federation_id: Some(&g.federation_id),
            credential_id: Some(&g.credential_id),
            service_account_id: Some(&g.service_account_id),
            resource: g.resource.as_deref(),
            iss: Some(&g.issuer),
            sub: Some(&g.subject),
            jti: g.external_jti.as_deref(),
            kid: g.kid.as_deref(),
            alg: Some(g.alg.as_str()),
            verified: true,
            token_sha256: Some(token_sha256),
            token_jti: Some(&issued.token.jti),
            expires_in: Some(issued.token.expires_in),
            signing_kid: Some(&issued.token.kid),
            ..ExchangeEvent::default()
        }
    }

    /// The audit line of a refusal, with what the caller presented.
    pub fn refused(caller: Caller<'a>, refused: &'a Refused, error: &'a str) -> Self {
        let p = &refused.presented;
        ExchangeEvent {
            request_id: caller.request_id,
            client: caller.client,
            decision: "deny",
            error: Some(error),
            error_code: Some(refused.error.reason.as_str()),
            description: Some(&refused.error.description),
            federation_id: refused.error.federation_id.as_deref(),
            service_account_id: p.service_account_id.as_deref(),
            resource: p.resource.as_deref(),
            iss: p.iss.as_deref(),
            sub: p.sub.as_deref(),
            jti: p.jti.as_deref(),
            kid: p.kid.as_deref(),
            alg: p.alg.map(|a| a.as_str()),
            verified: refused.verified(),
            ..ExchangeEvent::default()
        }
    }
}

/// One check of the Authorize API that was not allowed (event `authorize_denied`): allowed
/// checks are counted, not audited.
#[derive(Debug, Default, Serialize)]
pub struct AuthorizeDeniedEvent<'a> {
    pub request_id: &'a str,
    pub client: &'a str,
    /// The resource service that asked (a service account id).
    pub caller: &'a str,
    /// The service account the check's IAM token or API key speaks for; absent when the token
    /// is refused or the key unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// The id of the check's API key, when it carried a known one (never the key itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<&'a str>,
    /// The permission asked about, e.g. `lockbox.secrets.getPayload`.
    pub permission: &'a str,
    /// The first element of the resource path, `type:id`.
    pub resource: &'a str,
    /// The gRPC code of the check's answer: `PERMISSION_DENIED`, `UNAUTHENTICATED`,
    /// `INVALID_ARGUMENT`.
    pub code: &'a str,
    /// The refusal in words, as answered.
    pub description: &'a str,
}

/// One IAM API call that changes something (creating a token or a key, updating or deleting
/// a key), allowed or refused. Reads are not audited.
#[derive(Debug, Default, Serialize)]
pub struct ManagementEvent<'a> {
    pub request_id: &'a str,
    pub client: &'a str,
    /// The full gRPC method name, e.g. `yandex.cloud.iam.v1.KeyService/Create`.
    pub method: &'a str,
    /// The authenticated caller (a service account id). For `IamTokenService/Create`, the
    /// account the JWT speaks for once its signature verified. Absent when authentication
    /// failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'a str>,
    /// What the call acts on, `kind:id` (`authorized_key:aje…`, `service_account:aje…`), as
    /// named by the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a str>,
    /// `allow` or `deny`.
    pub decision: &'a str,
    /// The gRPC code of the answer: `OK`, `UNAUTHENTICATED`, `PERMISSION_DENIED`, …
    pub code: &'a str,
    /// The rule that refused the call (`unknown_key`, `token_expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// The refusal in words, as answered (never a token or key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    /// `IamTokenService/Create`: whether the JWT's signature verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// `IamTokenService/Create`: hex SHA-256 and `jti` of the IAM token issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_jti: Option<&'a str>,
}

/// The first start's bootstrap of an empty IAM store: what was created, and where the
/// administrator's key file was written (never the key).
#[derive(Debug, Serialize)]
pub struct BootstrapEvent<'a> {
    pub cloud_id: &'a str,
    pub folder_id: &'a str,
    pub service_account_id: &'a str,
    pub key_id: &'a str,
    pub key_file: &'a str,
}

/// A configuration reload, applied or refused.
#[derive(Debug, Default, Serialize)]
pub struct ConfigReloadEvent<'a> {
    /// `ok` or `error`.
    pub result: &'a str,
    /// `sighup` or `file change`.
    pub trigger: &'a str,
    /// Why a reload was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_credentials: Option<usize>,
}

/// The signing keys in use: at start, and whenever a reload changes them.
#[derive(Debug, Serialize)]
pub struct SigningKeysEvent<'a> {
    pub active: &'a str,
    pub published: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_active: Option<&'a str>,
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    time: String,
    event: &'a str,
    #[serde(flatten)]
    body: T,
}

/// How often buffered lines are written out.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Buffered bytes beyond which new events are dropped (the output is stuck).
pub const MAX_BUFFERED: usize = 64 << 20;

#[derive(Debug, Default)]
struct Buffer {
    lines: Vec<u8>,
    /// Incremented by every write-out; [`Audit::flush`] waits for it to move.
    flushed: u64,
    /// Set by [`Audit::flush`] to ask for an immediate write-out.
    flush_now: bool,
}

#[derive(Debug, Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    wake: Condvar,
}

/// The audit sink. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    shared: Option<Arc<Shared>>,
}

impl Audit {
    /// A sink that writes nothing.
    pub fn off() -> Audit {
        Audit { shared: None }
    }

    /// Starts the writer thread for `target`.
    pub fn start(target: &AuditTarget) -> std::io::Result<Audit> {
        let mut out: Box<dyn std::io::Write + Send> = match target {
            AuditTarget::Off => return Ok(Audit::off()),
            AuditTarget::Stdout => Box::new(std::io::stdout()),
            AuditTarget::File(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.append(true).create(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    options.mode(0o640);
                }
                Box::new(options.open(path)?)
            }
        };
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let mut pending = Vec::with_capacity(64 * 1024);
                loop {
                    {
                        let Ok(mut buffer) = writer.buffer.lock() else {
                            return;
                        };
                        if !buffer.flush_now {
                            buffer = match writer.wake.wait_timeout(buffer, FLUSH_INTERVAL) {
                                Ok((guard, _)) => guard,
                                Err(_) => return,
                            };
                        }
                        buffer.flush_now = false;
                        std::mem::swap(&mut buffer.lines, &mut pending);
                    }
                    if !pending.is_empty()
                        && let Err(e) = out.write_all(&pending).and_then(|()| out.flush())
                    {
                        tracing::error!(error = %e, "writing the audit log failed");
                    }
                    pending.clear();
                    if let Ok(mut buffer) = writer.buffer.lock() {
                        buffer.flushed += 1;
                    }
                    writer.wake.notify_all();
                }
            })?;
        Ok(Audit {
            shared: Some(shared),
        })
    }

    /// Records an event of kind `event` (`exchange`, `management`, `config_reload`,
    /// `signing_keys`, `iam_bootstrap`).
    pub fn record(&self, event: &str, body: impl Serialize) {
        self.append(|out| {
            let line = Line {
                time: rfc3339_millis(),
                event,
                body,
            };
            serde_json::to_writer(out, &line).is_ok()
        });
    }

    /// Records an exchange (event `exchange`): the line [`Audit::record`] would write, written
    /// without a general serializer, since there is one per exchange.
    pub fn record_exchange(&self, body: &ExchangeEvent<'_>) {
        self.append(|out| {
            body.write_line(out);
            true
        });
    }

    /// Appends one line, written by `write` straight into the buffer (`false`: nothing is kept).
    /// Once the buffer holds [`MAX_BUFFERED`] bytes, events are dropped and counted.
    fn append(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut buffer) = shared.buffer.lock() else {
            return;
        };
        let lines = &mut buffer.lines;
        if lines.len() >= MAX_BUFFERED {
            drop(buffer);
            metrics::counter!(crate::telemetry::AUDIT_DROPPED).increment(1);
            return;
        }
        let start = lines.len();
        if write(lines) {
            lines.push(b'\n');
        } else {
            lines.truncate(start);
        }
    }

    /// Writes out everything recorded so far (on shutdown), waiting at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut buffer) = shared.buffer.lock() else {
            return;
        };
        // Two write-outs: one may already be under way with an older swap of the buffer.
        let target = buffer.flushed + 2;
        let deadline = std::time::Instant::now() + timeout;
        while buffer.flushed < target {
            buffer.flush_now = true;
            shared.wake.notify_all();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            buffer = match shared.wake.wait_timeout(buffer, left) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
    }
}

impl ExchangeEvent<'_> {
    /// The event as the line `Audit::record("exchange", self)` writes (without its newline),
    /// byte for byte: the same members in the same order, absent ones left out, strings escaped
    /// as serde_json escapes them.
    fn write_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"time":""#);
        write_time_millis(out);
        out.extend_from_slice(br#"","event":"exchange""#);
        member(out, "request_id", Some(self.request_id));
        member(out, "client", Some(self.client));
        member(out, "decision", Some(self.decision));
        member(out, "error", self.error);
        member(out, "error_code", self.error_code);
        member(out, "description", self.description);
        member(out, "federation_id", self.federation_id);
        member(out, "credential_id", self.credential_id);
        member(out, "service_account_id", self.service_account_id);
        member(out, "resource", self.resource);
        member(out, "iss", self.iss);
        member(out, "sub", self.sub);
        member(out, "jti", self.jti);
        member(out, "kid", self.kid);
        member(out, "alg", self.alg);
        out.extend_from_slice(if self.verified {
            br#","verified":true"#
        } else {
            br#","verified":false"#
        });
        member(out, "token_sha256", self.token_sha256);
        member(out, "token_jti", self.token_jti);
        if let Some(expires_in) = self.expires_in {
            member_i64(out, "expires_in", expires_in);
        }
        member(out, "signing_kid", self.signing_kid);
        out.push(b'}');
    }
}

/// The current time, RFC 3339 in UTC with milliseconds (`2026-12-02T16:01:36.123Z`), the date
/// and time of day formatted once a second.
fn write_time_millis(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != now.as_secs() {
            *second = now.as_secs();
            let formatted = crate::time::rfc3339(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
            *text = formatted.trim_end_matches('Z').to_owned();
        }
        out.extend_from_slice(text.as_bytes());
    });
    let millis = now.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

fn rfc3339_millis() -> String {
    let mut out = Vec::with_capacity(24);
    write_time_millis(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line without its `time` member's value, which is the current time.
    fn without_time(line: &[u8]) -> String {
        let text = String::from_utf8(line.to_vec()).expect("UTF-8");
        let (head, rest) = text.split_once(r#"{"time":""#).expect("time first");
        assert!(head.is_empty(), "{text}");
        let (_, rest) = rest.split_once('"').expect("time ends");
        rest.to_owned()
    }

    #[test]
    fn the_exchange_line_is_what_the_general_serializer_writes() {
        let odd = "q\"b\\s/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é\u{2028}😀 end";
        let events = [
            ExchangeEvent {
                request_id: "r1",
                client: "127.0.0.1",
                decision: "allow",
                federation_id: Some("aje-fed"),
                credential_id: Some("aje-cred"),
                service_account_id: Some("aje-sa"),
                resource: Some("https://lockbox.example/"),
                iss: Some("https://issuer.example"),
                sub: Some("repo:org/app:ref:refs/heads/main"),
                jti: Some("j-1"),
                kid: Some("k1"),
                alg: Some("RS256"),
                verified: true,
                token_sha256: Some("00ff"),
                token_jti: Some("t-1"),
                expires_in: Some(3600),
                signing_kid: Some("sk"),
                ..ExchangeEvent::default()
            },
            ExchangeEvent {
                request_id: odd,
                client: odd,
                decision: "deny",
                error: Some("invalid_grant"),
                error_code: Some("bad_signature"),
                description: Some(odd),
                sub: Some(odd),
                iss: Some(""),
                expires_in: Some(-5),
                ..ExchangeEvent::default()
            },
            ExchangeEvent::default(),
        ];
        for event in &events {
            let mut ours = Vec::new();
            event.write_line(&mut ours);
            let theirs = serde_json::to_vec(&Line {
                time: rfc3339_millis(),
                event: "exchange",
                body: event,
            })
            .expect("serializes");
            assert_eq!(without_time(&ours), without_time(&theirs));
            let parsed: serde_json::Value = serde_json::from_slice(&ours).expect("valid JSON");
            assert_eq!(parsed["event"], "exchange");
        }
    }

    #[test]
    fn the_exchange_lines_time_is_now_in_milliseconds() {
        let mut out = Vec::new();
        write_time_millis(&mut out);
        let text = String::from_utf8(out).expect("UTF-8");
        assert_eq!(text.len(), "2026-12-02T16:01:36.123Z".len(), "{text}");
        assert_eq!(&text[19..20], ".", "{text}");
        assert!(text[20..23].bytes().all(|b| b.is_ascii_digit()), "{text}");
        let seconds = crate::time::parse_rfc3339(&format!("{}Z", &text[..19])).expect("RFC 3339");
        assert!((seconds - crate::time::now_unix()).abs() <= 2, "{text}");
        // Twice in a row: the second-long cache gives the same date and time of day.
        let mut again = Vec::new();
        write_time_millis(&mut again);
        assert!(String::from_utf8(again).expect("UTF-8").ends_with('Z'));
    }

    #[test]
    fn a_full_buffer_drops_events_instead_of_growing() {
        let shared = Arc::new(Shared::default());
        let audit = Audit {
            shared: Some(shared.clone()),
        };
        audit.record_exchange(&ExchangeEvent::default());
        let one = shared.buffer.lock().expect("lock").lines.len();
        assert!(one > 0);
        shared
            .buffer
            .lock()
            .expect("lock")
            .lines
            .resize(MAX_BUFFERED, b' ');
        audit.record_exchange(&ExchangeEvent::default());
        audit.record("exchange", ExchangeEvent::default());
        assert_eq!(
            shared.buffer.lock().expect("lock").lines.len(),
            MAX_BUFFERED
        );
        shared
            .buffer
            .lock()
            .expect("lock")
            .lines
            .truncate(MAX_BUFFERED - 1);
        audit.record_exchange(&ExchangeEvent::default());
        let lines = &shared.buffer.lock().expect("lock").lines;
        assert_eq!(lines.len(), MAX_BUFFERED - 1 + one);
        assert_eq!(lines.last(), Some(&b'\n'));
    }
}
