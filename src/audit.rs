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
        let Some(shared) = &self.shared else { return };
        let line = Line {
            time: rfc3339_millis(),
            event,
            body,
        };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        let Ok(mut buffer) = shared.buffer.lock() else {
            return;
        };
        if buffer.lines.len() + bytes.len() > MAX_BUFFERED {
            metrics::counter!(crate::telemetry::AUDIT_DROPPED).increment(1);
        } else {
            buffer.lines.extend_from_slice(&bytes);
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

fn rfc3339_millis() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::time::rfc3339(i64::try_from(now.as_secs()).unwrap_or(i64::MAX));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        now.subsec_millis()
    )
}
