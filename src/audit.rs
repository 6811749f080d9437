//! The audit log: one JSON line per exchange (allowed or denied), per configuration reload and
//! per signing-key change, to stdout or a file. It records who asked for what and what was
//! decided, and the SHA-256 of a minted token — never a token.
//!
//! Lines are handed to a writer task through a bounded channel, so a slow disk never stalls an
//! exchange; if the channel is full the event is dropped and counted
//! (`wif_gateway_audit_events_dropped_total`).

use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use tokio::sync::mpsc;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<&'a str>,
    /// The requested service account (the form `audience`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<&'a str>,
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

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    time: String,
    event: &'a str,
    #[serde(flatten)]
    body: T,
}

/// The audit sink. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

/// Lines waiting for the writer; beyond this, events are dropped and counted.
const QUEUE: usize = 16 * 1024;

impl Audit {
    /// A sink that writes nothing.
    pub fn off() -> Audit {
        Audit { tx: None }
    }

    /// Starts the writer task for `target`. Must run inside a Tokio runtime.
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
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let mut buffer = Vec::with_capacity(64 * 1024);
                while let Some(line) = rx.blocking_recv() {
                    buffer.extend_from_slice(&line);
                    while let Ok(more) = rx.try_recv() {
                        buffer.extend_from_slice(&more);
                        if buffer.len() > 1 << 20 {
                            break;
                        }
                    }
                    if let Err(e) = out.write_all(&buffer).and_then(|()| out.flush()) {
                        tracing::error!(error = %e, "writing the audit log failed");
                    }
                    buffer.clear();
                }
            })?;
        Ok(Audit { tx: Some(tx) })
    }

    /// Records an event of kind `event` (`exchange`, `config_reload`, `signing_keys`).
    pub fn record(&self, event: &str, body: impl Serialize) {
        let Some(tx) = &self.tx else { return };
        let line = Line {
            time: rfc3339_millis(),
            event,
            body,
        };
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        if tx.try_send(bytes).is_err() {
            metrics::counter!(crate::telemetry::AUDIT_DROPPED).increment(1);
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
