//! Configuration: one TOML file (plus the files and directories it `include`s) parsed with
//! unknown keys rejected, then *compiled*: every item validated, every reference resolved, the
//! whole set checked together, and only then turned into a [`Directory`] and settings. A broken
//! set is reported in full (every problem, with its file and item) and never half-applied.
//! `wif-gateway check-config` runs exactly this code.
//!
//! Relative paths in a file are resolved against that file's directory, so a config means the
//! same thing whatever the working directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;
use serde::Deserialize;

use crate::directory::{
    Directory, FederatedCredential, Federation, KeySource, KeySourceKind, ServiceAccount,
};
use crate::exchange::Policy;
use crate::keys::KeySet;
use crate::signing::{MAX_TOKEN_LIFETIME, Minter, SigningAlgorithm, SigningKey};

/// Every problem found in a configuration set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
const fn default_true() -> bool {
    true
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `serve --listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The gateway's public URL: `iss` of minted tokens and base of the discovery document.
    /// Default: `http://{listen}`.
    pub public_url: Option<String>,
    /// Longest a whole request may take (including a slow body), in seconds.
    #[serde(default = "ServerConfig::default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Longest a client may take to send its request headers, in seconds (slowloris guard).
    #[serde(default = "ServerConfig::default_header_timeout")]
    pub header_read_timeout_seconds: u64,
    /// On shutdown, how long in-flight requests may take to finish, in seconds.
    #[serde(default = "ServerConfig::default_shutdown_timeout")]
    pub shutdown_timeout_seconds: u64,
    /// Reload when the config file, an included directory or a key file's directory changes
    /// (SIGHUP always reloads).
    #[serde(default = "default_true")]
    pub watch_config: bool,
    /// Quiet time after the last change before a reload, in milliseconds.
    #[serde(default = "ServerConfig::default_debounce")]
    pub reload_debounce_ms: u64,
}

impl ServerConfig {
    const fn default_request_timeout() -> u64 {
        15
    }
    const fn default_header_timeout() -> u64 {
        5
    }
    const fn default_shutdown_timeout() -> u64 {
        20
    }
    const fn default_debounce() -> u64 {
        500
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            request_timeout_seconds: Self::default_request_timeout(),
            header_read_timeout_seconds: Self::default_header_timeout(),
            shutdown_timeout_seconds: Self::default_shutdown_timeout(),
            watch_config: true,
            reload_debounce_ms: Self::default_debounce(),
        }
    }
}

/// `[tokens]`: the access tokens the gateway mints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Lifetime of minted tokens in seconds (60 to 43200).
    #[serde(default = "TokensConfig::default_lifetime")]
    pub lifetime_seconds: i64,
    /// `aud` of minted tokens. Default: the public URL.
    pub audience: Option<String>,
}

impl TokensConfig {
    const fn default_lifetime() -> i64 {
        3600
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            lifetime_seconds: Self::default_lifetime(),
            audience: None,
        }
    }
}

/// `[signing]`: the gateway's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// PKCS#8 PEM of the active signing key.
    pub key_file: PathBuf,
    /// Keys published in the JWKS but not used to sign (next and retiring keys).
    #[serde(default)]
    pub published_key_files: Vec<PathBuf>,
    /// Create `key_file` if it does not exist (development only).
    #[serde(default)]
    pub generate_if_missing: bool,
    /// Algorithm of a generated key: `ES256` (default), `EdDSA` or `RS256`.
    #[serde(default)]
    pub generate_algorithm: Option<String>,
}

/// `[exchange]`: claim checks common to all federations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds (0 to 300).
    #[serde(default = "ExchangeConfig::default_leeway")]
    pub leeway_seconds: i64,
    /// Default longest accepted caller-token lifetime (`exp − iat`), in seconds.
    #[serde(default = "ExchangeConfig::default_max_lifetime")]
    pub max_token_lifetime_seconds: i64,
}

impl ExchangeConfig {
    const fn default_leeway() -> i64 {
        60
    }
    const fn default_max_lifetime() -> i64 {
        86_400
    }
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            leeway_seconds: Self::default_leeway(),
            max_token_lifetime_seconds: Self::default_max_lifetime(),
        }
    }
}

/// `[jwks]`: fetching and caching issuers' keys.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// Freshness when the response has no `Cache-Control: max-age`.
    #[serde(default = "JwksConfig::d_default_ttl")]
    pub default_ttl_seconds: u64,
    /// `max-age` is clamped to [min, max].
    #[serde(default = "JwksConfig::d_min_ttl")]
    pub min_ttl_seconds: u64,
    #[serde(default = "JwksConfig::d_max_ttl")]
    pub max_ttl_seconds: u64,
    /// A token with an unknown `kid` triggers a refetch at most once per this many seconds per
    /// source, so that forged `kid`s cannot turn the gateway into a fetch amplifier.
    #[serde(default = "JwksConfig::d_cooldown")]
    pub refetch_cooldown_seconds: u64,
    /// How long the last good keys are still used while the issuer cannot be reached.
    #[serde(default = "JwksConfig::d_max_stale")]
    pub max_stale_seconds: u64,
    /// TCP connect timeout for key fetches.
    #[serde(default = "JwksConfig::d_connect")]
    pub connect_timeout_seconds: u64,
    /// Whole-fetch timeout (connect, headers, body).
    #[serde(default = "JwksConfig::d_timeout")]
    pub timeout_seconds: u64,
    /// After a failed fetch, the first retry waits this long; each further failure doubles it up
    /// to `max_failure_backoff_seconds`.
    #[serde(default = "JwksConfig::d_backoff")]
    pub failure_backoff_seconds: u64,
    #[serde(default = "JwksConfig::d_max_backoff")]
    pub max_failure_backoff_seconds: u64,
}

impl JwksConfig {
    const fn d_default_ttl() -> u64 {
        600
    }
    const fn d_min_ttl() -> u64 {
        60
    }
    const fn d_max_ttl() -> u64 {
        3600
    }
    const fn d_cooldown() -> u64 {
        30
    }
    const fn d_max_stale() -> u64 {
        86_400
    }
    const fn d_connect() -> u64 {
        2
    }
    const fn d_timeout() -> u64 {
        5
    }
    const fn d_backoff() -> u64 {
        1
    }
    const fn d_max_backoff() -> u64 {
        60
    }
}

impl Default for JwksConfig {
    fn default() -> Self {
        JwksConfig {
            default_ttl_seconds: Self::d_default_ttl(),
            min_ttl_seconds: Self::d_min_ttl(),
            max_ttl_seconds: Self::d_max_ttl(),
            refetch_cooldown_seconds: Self::d_cooldown(),
            max_stale_seconds: Self::d_max_stale(),
            connect_timeout_seconds: Self::d_connect(),
            timeout_seconds: Self::d_timeout(),
            failure_backoff_seconds: Self::d_backoff(),
            max_failure_backoff_seconds: Self::d_max_backoff(),
        }
    }
}

/// `[dev_issuer]`: a built-in OIDC issuer at `/dev/issuer`, for local round trips only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevIssuerConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Where its RSA key is kept (generated if absent). Default: beside the signing key.
    pub key_file: Option<PathBuf>,
}

/// `[limits]`: overload protection (see [`crate::http::limits`]). A rate of 0 turns a limit off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Token requests in flight at once; more are answered 503 at once (load shedding).
    #[serde(default = "LimitsConfig::d_concurrent")]
    pub max_concurrent_requests: usize,
    /// Open connections at once; more wait in the kernel's accept backlog.
    #[serde(default = "LimitsConfig::d_connections")]
    pub max_connections: usize,
    /// Sustained token requests per second from one client IP, and the burst allowed above it.
    #[serde(default = "LimitsConfig::d_ip_rate")]
    pub per_client_ip_per_second: u32,
    #[serde(default = "LimitsConfig::d_ip_burst")]
    pub per_client_ip_burst: u32,
    /// Sustained exchanges per minute for one verified (issuer, subject), and its burst.
    #[serde(default = "LimitsConfig::d_subject_rate")]
    pub per_subject_per_minute: u32,
    #[serde(default = "LimitsConfig::d_subject_burst")]
    pub per_subject_burst: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client. Others' is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl LimitsConfig {
    const fn d_concurrent() -> usize {
        256
    }
    const fn d_connections() -> usize {
        4096
    }
    const fn d_ip_rate() -> u32 {
        50
    }
    const fn d_ip_burst() -> u32 {
        100
    }
    const fn d_subject_rate() -> u32 {
        60
    }
    const fn d_subject_burst() -> u32 {
        20
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrent_requests: Self::d_concurrent(),
            max_connections: Self::d_connections(),
            per_client_ip_per_second: Self::d_ip_rate(),
            per_client_ip_burst: Self::d_ip_burst(),
            per_subject_per_minute: Self::d_subject_rate(),
            per_subject_burst: Self::d_subject_burst(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[audit]`: the audit log (see [`crate::audit`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `stdout`, `off`, or the path of a file to append to.
    #[serde(default = "AuditConfig::default_output")]
    pub output: String,
}

impl AuditConfig {
    fn default_output() -> String {
        "stdout".into()
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            output: Self::default_output(),
        }
    }
}

/// `[[federations]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub folder_id: String,
    #[serde(default)]
    pub description: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Key source: `jwks_url`, or an inline `jwks` (table or JSON string), or `jwks_file`; with
    /// none of them, OIDC discovery from `issuer`.
    pub jwks_url: Option<String>,
    pub jwks: Option<toml::Value>,
    pub jwks_file: Option<PathBuf>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Allow `http://` key URLs. Only for loopback tests and the dev issuer.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// PEM bundle of extra CAs trusted for this federation's key fetches.
    pub ca_bundle: Option<PathBuf>,
    /// Overrides `[exchange] max_token_lifetime_seconds` for this federation.
    pub max_token_lifetime_seconds: Option<i64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[[service_accounts]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountConfig {
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub folder_id: String,
    #[serde(default)]
    pub description: String,
}

/// `[[federated_credentials]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Optional; derived from the binding when absent.
    pub id: Option<String>,
    pub federation_id: String,
    pub service_account_id: String,
    pub external_subject_id: String,
}

/// The main configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tokens: TokensConfig,
    pub signing: SigningConfig,
    #[serde(default)]
    pub exchange: ExchangeConfig,
    #[serde(default)]
    pub jwks: JwksConfig,
    #[serde(default)]
    pub dev_issuer: DevIssuerConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Files or directories (every `*.toml` inside, sorted) holding more directory items.
    #[serde(default)]
    pub include: Vec<PathBuf>,
    #[serde(default)]
    pub federations: Vec<FederationConfig>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountConfig>,
    #[serde(default)]
    pub federated_credentials: Vec<CredentialConfig>,
}

/// An included file: directory items only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    #[serde(default)]
    pub federations: Vec<FederationConfig>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountConfig>,
    #[serde(default)]
    pub federated_credentials: Vec<CredentialConfig>,
}

/// Compiled settings of the server and the signing keys: what is not the directory.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Without trailing slash.
    pub public_url: String,
    pub request_timeout_seconds: u64,
    pub header_read_timeout_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub token_lifetime: i64,
    pub token_audience: String,
    pub signing_key_file: PathBuf,
    pub published_key_files: Vec<PathBuf>,
    pub generate_signing_key: Option<SigningAlgorithm>,
    pub policy: Policy,
    pub jwks: JwksConfig,
    pub limits: LimitsConfig,
    pub audit: crate::audit::AuditTarget,
    /// Reload on changes below these directories (see `[server] watch_config`).
    pub watch: Vec<PathBuf>,
    pub reload_debounce_ms: u64,
    pub dev_issuer: Option<DevIssuerSettings>,
}

/// The dev issuer, when enabled.
#[derive(Debug, Clone)]
pub struct DevIssuerSettings {
    pub key_file: PathBuf,
}

/// A compiled configuration set.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub settings: Settings,
    pub directory: Directory,
}

/// Collects problems with their location.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, place: &str, message: impl fmt::Display) {
        self.0.push(format!("{place}: {message}"));
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Items of one file, with the file they came from.
struct Sourced<T> {
    file: Arc<Path>,
    index: usize,
    item: T,
}

impl<T> Sourced<T> {
    fn place(&self, list: &str, id: &str) -> String {
        format!(
            "{}: {list}[{}] (id {id:?})",
            self.file.display(),
            self.index
        )
    }
}

#[derive(Default)]
struct Items {
    federations: Vec<Sourced<FederationConfig>>,
    service_accounts: Vec<Sourced<ServiceAccountConfig>>,
    credentials: Vec<Sourced<CredentialConfig>>,
}

impl Items {
    fn add(&mut self, file: &Path, f: DirectoryFile) {
        let file: Arc<Path> = Arc::from(file);
        self.federations.extend(sourced(&file, f.federations));
        self.service_accounts
            .extend(sourced(&file, f.service_accounts));
        self.credentials
            .extend(sourced(&file, f.federated_credentials));
    }
}

fn sourced<T>(file: &Arc<Path>, items: Vec<T>) -> Vec<Sourced<T>> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| Sourced {
            file: file.clone(),
            index,
            item,
        })
        .collect()
}

/// Loads and compiles the configuration set rooted at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, None)
}

/// Like [`load`], with `[server] listen` replaced (the `--listen` flag). The default public URL
/// follows the replaced address.
pub fn load_with(path: &Path, listen: Option<SocketAddr>) -> Result<Config, ConfigError> {
    let started = std::time::Instant::now();
    let fail = |m: String| ConfigError { problems: vec![m] };
    let mut file: ConfigFile = parse_toml(path).map_err(fail)?;
    if let Some(listen) = listen {
        file.server.listen = listen;
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut items = Items::default();
    let mut problems = Problems(Vec::new());
    items.add(
        path,
        DirectoryFile {
            federations: std::mem::take(&mut file.federations),
            service_accounts: std::mem::take(&mut file.service_accounts),
            federated_credentials: std::mem::take(&mut file.federated_credentials),
        },
    );
    let mut included = Vec::new();
    for include in &file.include {
        let target = resolve(&base, include);
        if !target.is_dir() {
            included.push(target);
            continue;
        }
        match std::fs::read_dir(&target) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                    .collect();
                files.sort();
                included.extend(files);
            }
            Err(e) => problems.add(
                &format!("{}: include", path.display()),
                format!("{}: {e}", target.display()),
            ),
        }
    }
    for (f, parsed) in included.iter().zip(parse_all(&included)) {
        match parsed {
            Ok(d) => items.add(f, d),
            Err(e) => problems.0.push(e),
        }
    }
    let parsed = started.elapsed();
    let settings = compile_settings(&file, path, &base, &mut problems);
    let directory = compile_directory(items, &file.exchange, &mut problems);
    tracing::debug!(
        files = included.len() + 1,
        parse_ms = parsed.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "configuration loaded"
    );
    if problems.0.is_empty() {
        Ok(Config {
            path: path.to_path_buf(),
            settings,
            directory,
        })
    } else {
        Err(ConfigError {
            problems: problems.0,
        })
    }
}

/// Parses included files on all cores, in order.
fn parse_all(files: &[PathBuf]) -> Vec<Result<DirectoryFile, String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<DirectoryFile, String>>> = Vec::new();
    results.resize_with(files.len(), || None);
    let slots: Vec<std::sync::Mutex<Option<Result<DirectoryFile, String>>>> =
        results.into_iter().map(std::sync::Mutex::new).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let parsed = parse_toml::<DirectoryFile>(file);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(parsed);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(files)
        .map(|(slot, file)| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(format!("{}: not parsed", file.display())))
        })
        .collect()
}

fn check_url(value: &str, allow_http: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(format!(
                "{value:?} uses plain http; set allow_insecure_http = true only for loopback tests"
            ));
        }
        other => return Err(format!("{value:?}: scheme {other:?} is not http(s)")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{value:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{value:?} must not carry credentials"));
    }
    Ok(url)
}

fn compile_settings(
    file: &ConfigFile,
    path: &Path,
    base: &Path,
    problems: &mut Problems,
) -> Settings {
    let place = |section: &str| format!("{}: [{section}]", path.display());
    let s = &file.server;
    let public_url = match &s.public_url {
        Some(u) => match check_url(u, true) {
            Ok(_) => u.trim_end_matches('/').to_owned(),
            Err(e) => {
                problems.add(&place("server"), format!("public_url {e}"));
                String::new()
            }
        },
        None => format!("http://{}", s.listen),
    };
    for (name, v) in [
        ("request_timeout_seconds", s.request_timeout_seconds),
        ("header_read_timeout_seconds", s.header_read_timeout_seconds),
        ("shutdown_timeout_seconds", s.shutdown_timeout_seconds),
    ] {
        if !(1..=3600).contains(&v) {
            problems.add(
                &place("server"),
                format!("{name} = {v} is outside 1..=3600"),
            );
        }
    }
    if !(10..=60_000).contains(&s.reload_debounce_ms) {
        problems.add(
            &place("server"),
            format!(
                "reload_debounce_ms = {} is outside 10..=60000",
                s.reload_debounce_ms
            ),
        );
    }
    let t = &file.tokens;
    if !(60..=MAX_TOKEN_LIFETIME).contains(&t.lifetime_seconds) {
        problems.add(
            &place("tokens"),
            format!(
                "lifetime_seconds = {} is outside 60..={MAX_TOKEN_LIFETIME} (tokens never live over 12 h)",
                t.lifetime_seconds
            ),
        );
    }
    let e = &file.exchange;
    if !(0..=300).contains(&e.leeway_seconds) {
        problems.add(
            &place("exchange"),
            format!("leeway_seconds = {} is outside 0..=300", e.leeway_seconds),
        );
    }
    if !(60..=MAX_CALLER_LIFETIME).contains(&e.max_token_lifetime_seconds) {
        problems.add(
            &place("exchange"),
            format!(
                "max_token_lifetime_seconds = {} is outside 60..={MAX_CALLER_LIFETIME}",
                e.max_token_lifetime_seconds
            ),
        );
    }
    let j = &file.jwks;
    if !(j.min_ttl_seconds <= j.default_ttl_seconds && j.default_ttl_seconds <= j.max_ttl_seconds) {
        problems.add(
            &place("jwks"),
            "min_ttl_seconds <= default_ttl_seconds <= max_ttl_seconds does not hold",
        );
    }
    if j.max_stale_seconds < j.max_ttl_seconds {
        problems.add(
            &place("jwks"),
            "max_stale_seconds is shorter than max_ttl_seconds",
        );
    }
    if j.connect_timeout_seconds == 0 || j.timeout_seconds == 0 || j.timeout_seconds > 60 {
        problems.add(&place("jwks"), "timeouts must be 1..=60 seconds");
    }
    if j.failure_backoff_seconds > j.max_failure_backoff_seconds {
        problems.add(
            &place("jwks"),
            "failure_backoff_seconds exceeds max_failure_backoff_seconds",
        );
    }
    let l = &file.limits;
    if l.max_concurrent_requests == 0 || l.max_connections == 0 {
        problems.add(
            &place("limits"),
            "max_concurrent_requests and max_connections must be at least 1",
        );
    }
    let g = &file.signing;
    let generate = if g.generate_if_missing {
        match g.generate_algorithm.as_deref().map(SigningAlgorithm::parse) {
            None => Some(SigningAlgorithm::ES256),
            Some(Some(alg)) => Some(alg),
            Some(None) => {
                problems.add(
                    &place("signing"),
                    "generate_algorithm must be ES256, EdDSA or RS256",
                );
                None
            }
        }
    } else {
        if g.generate_algorithm.is_some() {
            problems.add(
                &place("signing"),
                "generate_algorithm is set but generate_if_missing is not",
            );
        }
        None
    };
    let signing_key_file = resolve(base, &g.key_file);
    // What a reload depends on: the config's directory, included directories (or the
    // directories of included files) and the directories of the key files (a Kubernetes Secret
    // update swaps them).
    let mut watch: Vec<PathBuf> = vec![base.to_path_buf()];
    for include in &file.include {
        let target = resolve(base, include);
        watch.push(if target.is_dir() {
            target
        } else {
            target
                .parent()
                .map_or_else(|| base.to_path_buf(), Path::to_path_buf)
        });
    }
    for key in std::iter::once(&g.key_file).chain(&g.published_key_files) {
        if let Some(dir) = resolve(base, key).parent() {
            watch.push(dir.to_path_buf());
        }
    }
    watch.sort();
    watch.dedup();
    let dev_issuer = file.dev_issuer.enabled.then(|| DevIssuerSettings {
        key_file: file.dev_issuer.key_file.as_ref().map_or_else(
            || signing_key_file.with_file_name("dev-issuer-key.pem"),
            |p| resolve(base, p),
        ),
    });
    Settings {
        listen: s.listen,
        token_audience: t.audience.clone().unwrap_or_else(|| public_url.clone()),
        public_url,
        request_timeout_seconds: s.request_timeout_seconds,
        header_read_timeout_seconds: s.header_read_timeout_seconds,
        shutdown_timeout_seconds: s.shutdown_timeout_seconds,
        token_lifetime: t.lifetime_seconds,
        published_key_files: g
            .published_key_files
            .iter()
            .map(|p| resolve(base, p))
            .collect(),
        signing_key_file,
        generate_signing_key: generate,
        policy: Policy {
            leeway: e.leeway_seconds,
        },
        jwks: *j,
        limits: file.limits.clone(),
        audit: match file.audit.output.as_str() {
            "stdout" => crate::audit::AuditTarget::Stdout,
            "off" => crate::audit::AuditTarget::Off,
            path => crate::audit::AuditTarget::File(resolve(base, Path::new(path))),
        },
        watch: if s.watch_config { watch } else { Vec::new() },
        reload_debounce_ms: s.reload_debounce_ms,
        dev_issuer,
    }
}

/// Longest caller-token lifetime any federation may accept (Kubernetes tokens can live a year).
pub const MAX_CALLER_LIFETIME: i64 = 366 * 86_400;

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 50 {
        return Err(format!("id {id:?} must be 1 to 50 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "id {id:?} may contain only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be 3 to 63 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen"
        ))
    }
}

/// The id of a credential written without one: a digest of what it binds, so that it is the
/// same on every load and every replica.
fn derived_credential_id(c: &CredentialConfig) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(c.federation_id.as_bytes());
    ctx.update(b"\x1f");
    ctx.update(c.service_account_id.as_bytes());
    ctx.update(b"\x1f");
    ctx.update(c.external_subject_id.as_bytes());
    let d = ctx.finish();
    let mut id = String::with_capacity(20);
    id.push_str("fc");
    for b in d.as_ref().iter().take(9) {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

fn compile_directory(
    items: Items,
    exchange: &ExchangeConfig,
    problems: &mut Problems,
) -> Directory {
    let mut sources: HashMap<String, Arc<KeySource>> = HashMap::new();
    let mut federations = Vec::with_capacity(items.federations.len());
    let mut fed_ids: HashSet<String> = HashSet::new();
    for s in &items.federations {
        let f = &s.item;
        let place = s.place("federations", &f.id);
        if let Err(e) = check_id(&f.id) {
            problems.add(&place, e);
        }
        if !fed_ids.insert(f.id.clone()) {
            problems.add(&place, "duplicate federation id");
        }
        if let Some(name) = &f.name
            && let Err(e) = check_name(name)
        {
            problems.add(&place, e);
        }
        if f.issuer.is_empty() || f.issuer.len() > 8000 {
            problems.add(&place, "issuer must be 1 to 8000 characters");
        }
        if f.issuer != f.issuer.trim() {
            problems.add(&place, "issuer has surrounding white space");
        }
        if f.audiences.is_empty() || f.audiences.len() > 100 {
            problems.add(
                &place,
                "audiences must list 1 to 100 values (an audience is always required)",
            );
        }
        for a in &f.audiences {
            if a.is_empty() || a.len() > 255 {
                problems.add(
                    &place,
                    format!("audience {a:?} must be 1 to 255 characters"),
                );
            }
        }
        let max_lifetime = f
            .max_token_lifetime_seconds
            .unwrap_or(exchange.max_token_lifetime_seconds);
        if !(60..=MAX_CALLER_LIFETIME).contains(&max_lifetime) {
            problems.add(&place, format!("max_token_lifetime_seconds = {max_lifetime} is outside 60..={MAX_CALLER_LIFETIME}"));
        }
        let base = s.file.parent().unwrap_or(Path::new("."));
        let ca_bundle = f.ca_bundle.as_ref().map(|p| resolve(base, p));
        if let Some(ca) = &ca_bundle {
            match std::fs::read(ca) {
                Ok(bytes) => {
                    let certs = pem::parse_many(&bytes)
                        .map(|v| v.iter().filter(|b| b.tag() == "CERTIFICATE").count());
                    if !matches!(certs, Ok(n) if n > 0) {
                        problems.add(
                            &place,
                            format!("ca_bundle {} holds no PEM certificate", ca.display()),
                        );
                    }
                }
                Err(e) => problems.add(&place, format!("ca_bundle {}: {e}", ca.display())),
            }
        }
        let chosen = [
            f.jwks_url.is_some(),
            f.jwks.is_some(),
            f.jwks_file.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        let kind = if chosen > 1 {
            problems.add(&place, "set at most one of jwks_url, jwks, jwks_file");
            None
        } else if let Some(u) = &f.jwks_url {
            match check_url(u, f.allow_insecure_http) {
                Ok(url) => Some(KeySourceKind::JwksUrl(url)),
                Err(e) => {
                    problems.add(&place, format!("jwks_url {e}"));
                    None
                }
            }
        } else if f.jwks.is_some() || f.jwks_file.is_some() {
            let text = match (&f.jwks, &f.jwks_file) {
                (Some(toml::Value::String(s)), _) => Ok(s.clone()),
                (Some(v), _) => serde_json::to_string(v).map_err(|e| e.to_string()),
                (None, Some(p)) => std::fs::read_to_string(resolve(base, p))
                    .map_err(|e| format!("jwks_file {}: {e}", resolve(base, p).display())),
                (None, None) => Err("no JWKS".into()),
            };
            match text.and_then(|t| {
                KeySet::from_jwks_json(t.as_bytes())
                    .map(|k| (k, t))
                    .map_err(|e| format!("inline {e}"))
            }) {
                Ok((keys, text)) => Some(KeySourceKind::Inline {
                    keys: Arc::new(keys),
                    digest: digest::digest(&digest::SHA256, text.as_bytes())
                        .as_ref()
                        .iter()
                        .take(12)
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                }),
                Err(e) => {
                    problems.add(&place, e);
                    None
                }
            }
        } else {
            match check_url(&f.issuer, f.allow_insecure_http) {
                Ok(_) => Some(KeySourceKind::Discovery {
                    issuer: f.issuer.clone(),
                }),
                Err(e) => {
                    problems.add(
                        &place,
                        format!("no jwks_url, jwks or jwks_file, so keys come from OIDC discovery, but issuer {e}"),
                    );
                    None
                }
            }
        };
        let Some(kind) = kind else { continue };
        let source = KeySource::new(kind, f.allow_insecure_http, ca_bundle);
        let source = sources
            .entry(source.cache_key.clone())
            .or_insert_with(|| Arc::new(source))
            .clone();
        federations.push(Federation {
            id: f.id.clone(),
            name: f.name.clone().unwrap_or_else(|| f.id.clone()),
            folder_id: f.folder_id.clone(),
            issuer: f.issuer.clone(),
            audiences: f.audiences.clone(),
            enabled: f.enabled,
            key_source: source,
            max_token_lifetime: max_lifetime,
        });
    }

    let mut accounts = Vec::with_capacity(items.service_accounts.len());
    let mut sa_ids: HashSet<String> = HashSet::new();
    for s in &items.service_accounts {
        let a = &s.item;
        let place = s.place("service_accounts", &a.id);
        if let Err(e) = check_id(&a.id) {
            problems.add(&place, e);
        }
        if let Some(name) = &a.name
            && let Err(e) = check_name(name)
        {
            problems.add(&place, e);
        }
        if !sa_ids.insert(a.id.clone()) {
            problems.add(&place, "duplicate service account id");
        }
        accounts.push(ServiceAccount {
            id: a.id.clone(),
            name: a.name.clone().unwrap_or_else(|| a.id.clone()),
            folder_id: a.folder_id.clone(),
        });
    }

    // A million credentials must load in seconds: validate them by reference, then move their
    // strings into the directory without copying them.
    let ids: Vec<String> = items
        .credentials
        .iter()
        .map(|s| {
            s.item
                .id
                .clone()
                .unwrap_or_else(|| derived_credential_id(&s.item))
        })
        .collect();
    {
        let mut seen_ids: HashSet<&str> = HashSet::with_capacity(ids.len());
        let mut bindings: HashSet<(&str, &str, &str)> = HashSet::with_capacity(ids.len());
        for (s, id) in items.credentials.iter().zip(&ids) {
            let c = &s.item;
            let place = || s.place("federated_credentials", id);
            if c.id.is_some()
                && let Err(e) = check_id(id)
            {
                problems.add(&place(), e);
            }
            if !seen_ids.insert(id) {
                problems.add(&place(), "duplicate federated credential id");
            }
            if !fed_ids.contains(&c.federation_id) {
                problems.add(
                    &place(),
                    format!("federation_id {:?} names no federation", c.federation_id),
                );
            }
            if !sa_ids.contains(&c.service_account_id) {
                problems.add(
                    &place(),
                    format!(
                        "service_account_id {:?} names no service account",
                        c.service_account_id
                    ),
                );
            }
            let subject = &c.external_subject_id;
            if subject.is_empty() || subject.len() > 1000 {
                problems.add(&place(), "external_subject_id must be 1 to 1000 characters (a binding never matches any subject)");
            } else if subject.trim() != subject {
                problems.add(
                    &place(),
                    "external_subject_id has surrounding white space; subjects are compared exactly",
                );
            }
            if !bindings.insert((&c.federation_id, &c.service_account_id, subject)) {
                problems.add(
                    &place(),
                    "the same federation, service account and subject are bound twice",
                );
            }
        }
    }
    if !problems.0.is_empty() {
        return Directory::default();
    }
    let credentials = items
        .credentials
        .into_iter()
        .zip(ids)
        .map(|(s, id)| FederatedCredential {
            id,
            federation_id: s.item.federation_id,
            service_account_id: s.item.service_account_id,
            external_subject_id: s.item.external_subject_id,
        })
        .collect();
    Directory::build(federations, accounts, credentials)
}

impl Settings {
    /// Loads the signing keys into a [`Minter`]; generates the active key first if allowed and
    /// missing (writing it with mode 0600).
    pub fn load_minter(&self) -> Result<Minter, String> {
        if !self.signing_key_file.exists()
            && let Some(alg) = self.generate_signing_key
        {
            let (_, pem_text) = SigningKey::generate(alg).map_err(|e| e.to_string())?;
            write_private(&self.signing_key_file, &pem_text)?;
            tracing::info!(path = %self.signing_key_file.display(), %alg, "generated a signing key");
        }
        let active = SigningKey::from_file(&self.signing_key_file).map_err(|e| e.to_string())?;
        let published = self
            .published_key_files
            .iter()
            .map(|p| SigningKey::from_file(p).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Minter::new(
            self.public_url.clone(),
            self.token_audience.clone(),
            self.token_lifetime,
            active,
            published,
        ))
    }
}

/// Writes a private key file readable by its owner only, atomically (temp file + rename).
pub fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(fail)?;
    f.write_all(contents.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// A scratch directory under the system temp dir, unique per process and call, removed on
    /// drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "wif-gateway-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, text).expect("write");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The main config file's name; included files are named in each case.
    const MAIN: &str = "gateway.toml";
    /// The smallest valid config: the key file need not exist for `load`.
    const SIGNING: &str = "[signing]\nkey_file = \"k.pem\"\n";
    const FED: &str = r#"
[[federations]]
id = "fed-1"
issuer = "https://issuer.example"
audiences = ["aud-1"]
jwks_url = "https://issuer.example/jwks"
"#;
    const SA: &str = r#"
[[service_accounts]]
id = "sa-1"
"#;
    const CRED: &str = r#"
[[federated_credentials]]
id = "cred-1"
federation_id = "fed-1"
service_account_id = "sa-1"
external_subject_id = "subject-1"
"#;

    /// Files to write, by path relative to the scratch directory, and their text.
    type Files = Vec<(&'static str, String)>;

    /// An expected problem: the file it names, and strings that same problem contains.
    type Problem = (&'static str, Vec<&'static str>);

    /// Writes `files` (the first is [`MAIN`]) into a fresh directory and loads [`MAIN`].
    fn load_files(files: &Files) -> Result<Config, ConfigError> {
        let dir = Scratch::new();
        for (name, text) in files {
            dir.write(name, text);
        }
        load(&dir.0.join(MAIN))
    }

    fn main_only(text: String) -> Files {
        vec![(MAIN, text)]
    }

    /// A federation of `id` with extra TOML lines (which override nothing: TOML refuses a key
    /// set twice, so the base lines are given in full).
    fn federation(id: &str, lines: &str) -> String {
        format!("\n[[federations]]\nid = \"{id}\"\n{lines}\n")
    }

    /// A JWKS with one fresh P-256 key, as JSON.
    fn ec_jwks() -> String {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec");
        let point = pair.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]})
        .to_string()
    }

    #[test]
    fn loads_valid_configurations() {
        let jwks = ec_jwks();
        let jwk: serde_json::Value = serde_json::from_str(&jwks).expect("json");
        let k = &jwk["keys"][0];
        let table = format!(
            r#"jwks = {{ keys = [ {{ kty = "EC", crv = "P-256", kid = "k1", x = {}, y = {} }} ] }}"#,
            k["x"], k["y"]
        );
        let inline = |lines: &str| {
            format!(
                "{SIGNING}{}",
                federation(
                    "fed-1",
                    &format!("issuer = \"https://issuer.example\"\naudiences = [\"a\"]\n{lines}"),
                )
            )
        };
        let cases: Vec<(&str, Files, (usize, usize, usize))> = vec![
            ("minimal", main_only(SIGNING.into()), (0, 0, 0)),
            (
                "one of each",
                main_only(format!("{SIGNING}{FED}{SA}{CRED}")),
                (1, 1, 1),
            ),
            (
                "inline jwks as a TOML table",
                main_only(inline(&table)),
                (1, 0, 0),
            ),
            (
                "inline jwks as a JSON string",
                main_only(inline(&format!("jwks = '''{jwks}'''"))),
                (1, 0, 0),
            ),
            (
                "jwks_file beside the config",
                vec![
                    (MAIN, inline("jwks_file = \"keys/jwks.json\"")),
                    ("keys/jwks.json", jwks.clone()),
                ],
                (1, 0, 0),
            ),
            (
                "discovery from an https issuer",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed-1",
                        "issuer = \"https://issuer.example\"\naudiences = [\"a\"]"
                    )
                )),
                (1, 0, 0),
            ),
            (
                "plain http allowed explicitly",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed-1",
                        "issuer = \"http://127.0.0.1:9000\"\naudiences = [\"a\"]\njwks_url = \"http://127.0.0.1:9000/jwks\"\nallow_insecure_http = true"
                    )
                )),
                (1, 0, 0),
            ),
            (
                "federations in an included directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}{SA}")),
                    ("dir/a.toml", format!("{FED}{CRED}")),
                    (
                        "dir/b.toml",
                        format!(
                            "{}\n[[federated_credentials]]\nfederation_id = \"fed-2\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"subject-2\"\n",
                            federation(
                                "fed-2",
                                "issuer = \"https://other.example\"\naudiences = [\"a\"]"
                            )
                        ),
                    ),
                    ("dir/notes.txt", "not toml, not read".into()),
                ],
                (2, 1, 2),
            ),
            (
                "jwks_file resolved against the including file's directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    (
                        "dir/a.toml",
                        federation(
                            "fed-1",
                            "issuer = \"https://issuer.example\"\naudiences = [\"a\"]\njwks_file = \"jwks.json\"",
                        ),
                    ),
                    ("dir/jwks.json", jwks.clone()),
                ],
                (1, 0, 0),
            ),
            (
                "an included single file",
                vec![
                    (MAIN, format!("include = [\"more.toml\"]\n{SIGNING}")),
                    ("more.toml", format!("{FED}{SA}{CRED}")),
                ],
                (1, 1, 1),
            ),
        ];
        for (name, files, (federations, accounts, credentials)) in cases {
            let config = match load_files(&files) {
                Ok(config) => config,
                Err(e) => panic!("{name}: {e}"),
            };
            let d = &config.directory;
            assert_eq!(
                (
                    d.federations().len(),
                    d.service_account_count(),
                    d.credential_count()
                ),
                (federations, accounts, credentials),
                "{name}"
            );
        }
    }

    #[test]
    fn inline_jwks_become_an_inline_key_source() {
        let jwks = ec_jwks();
        let text = format!(
            "{SIGNING}{}",
            federation(
                "fed-1",
                &format!(
                    "issuer = \"https://issuer.example\"\naudiences = [\"a\"]\njwks = '''{jwks}'''"
                )
            )
        );
        let config = load_files(&main_only(text)).expect("valid");
        let federation = &config.directory.federations()[0];
        match &federation.key_source.kind {
            KeySourceKind::Inline { keys, .. } => {
                assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1"]);
            }
            other => panic!("expected an inline source, got {other:?}"),
        }
    }

    #[test]
    fn reports_each_invalid_item_with_its_file_and_id() {
        let fed_with = |lines: &str| {
            format!(
                "{SIGNING}{}",
                federation(
                    "fed-1",
                    &format!("issuer = \"https://issuer.example\"\n{lines}")
                )
            )
        };
        let cred = |id: &str, federation: &str, account: &str, subject: &str| {
            format!(
                "\n[[federated_credentials]]\nid = \"{id}\"\nfederation_id = \"{federation}\"\nservice_account_id = \"{account}\"\nexternal_subject_id = \"{subject}\"\n"
            )
        };
        let long_audience = "a".repeat(256);
        let oct = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#;
        // (name, files, expected problem)
        let cases: Vec<(&str, Files, Problem)> = vec![
            (
                "unknown top-level key",
                main_only(format!("federation_count = 1\n{SIGNING}")),
                (MAIN, vec!["federation_count"]),
            ),
            (
                "unknown key in a federation",
                main_only(format!(
                    "{SIGNING}{FED}jwks_uri = \"https://issuer.example/jwks\"\n"
                )),
                (MAIN, vec!["jwks_uri"]),
            ),
            (
                "no [signing]",
                main_only(FED.into()),
                (MAIN, vec!["signing"]),
            ),
            (
                "binding naming an unknown federation",
                main_only(format!(
                    "{SIGNING}{SA}{}",
                    cred("cred-1", "fed-missing", "sa-1", "s")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "\"fed-missing\"", "names no federation"],
                ),
            ),
            (
                "binding naming an unknown service account",
                main_only(format!(
                    "{SIGNING}{FED}{}",
                    cred("cred-1", "fed-1", "sa-missing", "s")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "\"sa-missing\"", "names no service account"],
                ),
            ),
            (
                "duplicate federation id",
                main_only(format!("{SIGNING}{FED}{FED}")),
                (
                    MAIN,
                    vec!["federations[1]", "\"fed-1\"", "duplicate federation id"],
                ),
            ),
            (
                "duplicate service account id",
                main_only(format!("{SIGNING}{SA}{SA}")),
                (
                    MAIN,
                    vec![
                        "service_accounts[1]",
                        "\"sa-1\"",
                        "duplicate service account id",
                    ],
                ),
            ),
            (
                "same binding twice under two ids",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{CRED}{}",
                    cred("cred-2", "fed-1", "sa-1", "subject-1")
                )),
                (MAIN, vec!["\"cred-2\"", "bound twice"]),
            ),
            (
                "same binding twice without ids",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{0}{0}",
                    "\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"s\"\n"
                )),
                (MAIN, vec!["federated_credentials[1]", "bound twice"]),
            ),
            (
                "duplicate credential id",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{CRED}{}",
                    cred("cred-1", "fed-1", "sa-1", "subject-2")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "duplicate federated credential id"],
                ),
            ),
            (
                "jwks_url not a URL",
                main_only(fed_with("audiences = [\"a\"]\njwks_url = \"not a url\"")),
                (
                    MAIN,
                    vec!["\"fed-1\"", "jwks_url", "\"not a url\"", "not a URL"],
                ),
            ),
            (
                "jwks_url over plain http",
                main_only(fed_with(
                    "audiences = [\"a\"]\njwks_url = \"http://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "jwks_url", "plain http"]),
            ),
            (
                "jwks_url with another scheme",
                main_only(fed_with(
                    "audiences = [\"a\"]\njwks_url = \"file:///etc/jwks.json\"",
                )),
                (MAIN, vec!["\"fed-1\"", "jwks_url", "\"file\""]),
            ),
            (
                "issuer not a URL, keys from discovery",
                main_only(format!(
                    "{SIGNING}{}",
                    federation("fed-1", "issuer = \"issuer.example\"\naudiences = [\"a\"]")
                )),
                (MAIN, vec!["\"fed-1\"", "discovery", "\"issuer.example\""]),
            ),
            (
                "empty audiences",
                main_only(fed_with(
                    "audiences = []\njwks_url = \"https://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "audiences must list"]),
            ),
            (
                "audience over 255 characters",
                main_only(fed_with(&format!(
                    "audiences = [\"{long_audience}\"]\njwks_url = \"https://issuer.example/jwks\""
                ))),
                (MAIN, vec!["\"fed-1\"", "1 to 255 characters"]),
            ),
            (
                "empty audience",
                main_only(fed_with(
                    "audiences = [\"\"]\njwks_url = \"https://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "1 to 255 characters"]),
            ),
            (
                "two key sources",
                main_only(fed_with(&format!(
                    "audiences = [\"a\"]\njwks_url = \"https://issuer.example/jwks\"\njwks = '''{}'''",
                    ec_jwks()
                ))),
                (MAIN, vec!["\"fed-1\"", "at most one of"]),
            ),
            (
                "inline jwks with only an oct key",
                main_only(fed_with(&format!("audiences = [\"a\"]\njwks = '{oct}'"))),
                (MAIN, vec!["\"fed-1\"", "no usable signing key", "oct"]),
            ),
            (
                "inline jwks not JSON",
                main_only(fed_with("audiences = [\"a\"]\njwks = '{keys'")),
                (MAIN, vec!["\"fed-1\"", "not valid JSON"]),
            ),
            (
                "jwks_file missing",
                main_only(fed_with("audiences = [\"a\"]\njwks_file = \"absent.json\"")),
                (MAIN, vec!["\"fed-1\"", "absent.json"]),
            ),
            (
                "tokens.lifetime_seconds over 12 h",
                main_only(format!("{SIGNING}[tokens]\nlifetime_seconds = 50000\n")),
                (MAIN, vec!["[tokens]", "lifetime_seconds = 50000"]),
            ),
            (
                "tokens.lifetime_seconds under a minute",
                main_only(format!("{SIGNING}[tokens]\nlifetime_seconds = 59\n")),
                (MAIN, vec!["[tokens]", "lifetime_seconds = 59"]),
            ),
            (
                "leeway over 300 s",
                main_only(format!("{SIGNING}[exchange]\nleeway_seconds = 301\n")),
                (MAIN, vec!["[exchange]", "leeway_seconds = 301"]),
            ),
            (
                "negative leeway",
                main_only(format!("{SIGNING}[exchange]\nleeway_seconds = -1\n")),
                (MAIN, vec!["[exchange]", "leeway_seconds = -1"]),
            ),
            (
                "federation max lifetime over a year",
                main_only(format!(
                    "{SIGNING}{FED}max_token_lifetime_seconds = 40000000\n"
                )),
                (
                    MAIN,
                    vec!["\"fed-1\"", "max_token_lifetime_seconds = 40000000"],
                ),
            ),
            (
                "federation id with a space",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed 1",
                        "issuer = \"https://issuer.example\"\naudiences = [\"a\"]"
                    )
                )),
                (MAIN, vec!["\"fed 1\"", "only letters, digits"]),
            ),
            (
                "service account id with a slash",
                main_only(format!("{SIGNING}[[service_accounts]]\nid = \"sa/1\"\n")),
                (MAIN, vec!["\"sa/1\"", "only letters, digits"]),
            ),
            (
                "service account id with the unit separator",
                main_only(format!(
                    "{SIGNING}[[service_accounts]]\nid = \"sa\\u001F1\"\n"
                )),
                (MAIN, vec!["service_accounts[0]", "only letters, digits"]),
            ),
            (
                "empty service account id",
                main_only(format!("{SIGNING}[[service_accounts]]\nid = \"\"\n")),
                (MAIN, vec!["service_accounts[0]", "1 to 50 characters"]),
            ),
            (
                "credential id with a dot",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred.1", "fed-1", "sa-1", "s")
                )),
                (MAIN, vec!["\"cred.1\"", "only letters, digits"]),
            ),
            (
                "external_subject_id empty",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred-1", "fed-1", "sa-1", "")
                )),
                (MAIN, vec!["\"cred-1\"", "external_subject_id must be"]),
            ),
            (
                "external_subject_id with surrounding white space",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred-1", "fed-1", "sa-1", "subject-1 ")
                )),
                (MAIN, vec!["\"cred-1\"", "white space"]),
            ),
            (
                "invalid federation in an included directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    (
                        "dir/a.toml",
                        federation(
                            "fed-inc",
                            "issuer = \"https://issuer.example\"\naudiences = []",
                        ),
                    ),
                ],
                ("dir/a.toml", vec!["\"fed-inc\"", "audiences must list"]),
            ),
            (
                "unknown key in an included file",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    ("dir/a.toml", format!("{FED}enabled_for = \"all\"\n")),
                ],
                ("dir/a.toml", vec!["enabled_for"]),
            ),
            (
                "settings in an included file",
                vec![
                    (MAIN, format!("include = [\"more.toml\"]\n{SIGNING}")),
                    ("more.toml", SIGNING.into()),
                ],
                ("more.toml", vec!["signing"]),
            ),
            (
                "binding in an included file naming an unknown federation",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}{SA}")),
                    ("dir/b.toml", cred("cred-9", "fed-missing", "sa-1", "s")),
                ],
                ("dir/b.toml", vec!["\"cred-9\"", "\"fed-missing\""]),
            ),
            (
                "missing included file",
                main_only(format!("include = [\"absent.toml\"]\n{SIGNING}")),
                ("absent.toml", vec![]),
            ),
        ];
        let mut failures = Vec::new();
        for (name, files, (file, needles)) in cases {
            match load_files(&files) {
                Ok(_) => failures.push(format!("{name}: loaded")),
                Err(e) => {
                    let found = e
                        .problems
                        .iter()
                        .any(|p| p.contains(file) && needles.iter().all(|n| p.contains(n)));
                    if !found {
                        failures.push(format!(
                            "{name}: no problem names {file} and {needles:?}: {:?}",
                            e.problems
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn reports_every_problem_of_a_file_at_once() {
        let text = format!(
            "{SIGNING}[exchange]\nleeway_seconds = 301\n{}{SA}{}",
            federation(
                "fed 1",
                "issuer = \"https://issuer.example\"\naudiences = []"
            ),
            "\n[[federated_credentials]]\nid = \"cred-1\"\nfederation_id = \"fed-missing\"\nservice_account_id = \"sa-missing\"\nexternal_subject_id = \"\"\n"
        );
        let err = load_files(&main_only(text)).expect_err("invalid");
        let expected = [
            "leeway_seconds = 301",
            "\"fed 1\" may contain only",
            "audiences must list",
            "\"fed-missing\" names no federation",
            "\"sa-missing\" names no service account",
            "external_subject_id must be",
        ];
        assert!(err.problems.len() >= 3, "{:?}", err.problems);
        for needle in expected {
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.contains(needle) && p.contains(MAIN)),
                "{needle} not reported: {:?}",
                err.problems
            );
        }
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!(
                "invalid configuration ({} problems)",
                err.problems.len()
            )),
            "{shown}"
        );
    }
}
