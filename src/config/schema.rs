//! The configuration files as written: TOML types with unknown keys rejected. Nothing here is
//! validated beyond its type; [`super::validate`] compiles these into settings and a directory.
//! Directory items keep their byte span in their file ([`Spanned`]: the `[[…]]` header or the
//! inline table), so that a problem can name the line they were written on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
pub use toml::Spanned;

pub use crate::exchange::jwks::JwksConfig;
pub use crate::limits::LimitsConfig;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_tls_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
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
    /// The `host:port` gRPC clients dial for the IAM API (the same listener as REST): what
    /// `ApiEndpointService` answers, and the `https://iam.{grpc_endpoint}/iam/v1/tokens`
    /// audience Yandex SDKs sign their JWTs for. Default: `public_url`'s host and port.
    pub grpc_endpoint: Option<String>,
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
    /// A second listener that terminates TLS itself, serving the same routes.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: the TLS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener, besides `[server] listen`; `serve --tls-listen` overrides it.
    #[serde(default = "default_tls_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain: the server certificate first, then intermediates.
    pub cert_file: PathBuf,
    /// PEM private key of the server certificate (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
    /// Make a development CA and a certificate for `localhost` and `127.0.0.1` when the files
    /// are missing (development only).
    #[serde(default)]
    pub generate_dev_ca: bool,
    /// Where the development CA is kept (`ca.pem`, `ca-key.pem`). Default: the directory of
    /// `cert_file`.
    pub dev_ca_dir: Option<PathBuf>,
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
            grpc_endpoint: None,
            request_timeout_seconds: Self::default_request_timeout(),
            header_read_timeout_seconds: Self::default_header_timeout(),
            shutdown_timeout_seconds: Self::default_shutdown_timeout(),
            watch_config: true,
            reload_debounce_ms: Self::default_debounce(),
            tls: None,
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
    /// The RFC 8707 `resource` values an exchange may ask for instead: absolute URIs, matched
    /// exactly; the token is then minted with that `aud`. Empty: no exchange may name one.
    #[serde(default)]
    pub resources: Vec<String>,
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
            resources: Vec::new(),
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

/// `[dev_issuer]`: a built-in OIDC issuer at `/dev/issuer`, for local round trips only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevIssuerConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Where its RSA key is kept (generated if absent). Default: beside the signing key.
    pub key_file: Option<PathBuf>,
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

/// `[store]`: the IAM store. Without this section the gateway serves from the TOML files alone
/// and the IAM API is off.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (a relative path is relative to the config file's directory) or
    /// `postgres://…`. The `WIF_STORE_URL` environment variable of `serve` replaces it.
    pub url: String,
}

/// The URL may hold a database password: never shown.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig").finish_non_exhaustive()
    }
}

/// `[iam]`: the IAM API (needs `[store]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    /// Accepted `aud` values of the service-account JWTs posted to `/iam/v1/tokens`. Default:
    /// `{public_url}/iam/v1/tokens`.
    pub token_audiences: Option<Vec<String>>,
    /// Where the first start writes the administrator's authorized key (Yandex key file,
    /// mode 0600). Default: `admin-key.json` beside the config file.
    pub bootstrap_key_file: Option<PathBuf>,
    /// Lets federations created through the API fetch their keys over plain `http://` when
    /// the host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`). For development
    /// with the dev issuer only: `config/dev.toml` turns it on.
    #[serde(default)]
    pub allow_http_to_loopback: bool,
    /// Quotas per cloud; each defaults to Yandex Cloud's.
    #[serde(default)]
    pub quotas: QuotasConfig,
    /// The keys static access keys' secrets are sealed with at rest (AES-256-GCM): the first
    /// seals, every one listed opens. Without any, access keys cannot be created.
    #[serde(default)]
    pub secret_keys: Vec<SecretKeyConfig>,
}

/// One key of `[iam] secret_keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyConfig {
    /// Names the key in every value it seals (1 to 64 characters of `A-Z a-z 0-9 . _ -`).
    pub id: String,
    /// 32 random bytes, raw or as base64 text (relative to the config file's directory).
    pub file: PathBuf,
    /// Create `file` if it does not exist (development only).
    #[serde(default)]
    pub generate_if_missing: bool,
}

/// `[iam.quotas]`: per cloud, how many of each resource the API creates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// `iam.serviceAccounts.count`, default 100.
    pub service_accounts: Option<u64>,
    /// `iam.oidcWLIFederations.count`, default 50.
    pub federations: Option<u64>,
    /// `iam.saFederatedCredentials.count`, default 200.
    pub federated_credentials: Option<u64>,
    /// `iam.authorizedKeys.count`, default 1000.
    pub authorized_keys: Option<u64>,
    /// `iam.accessKeys.count`, default 1000.
    pub access_keys: Option<u64>,
    /// `iam.apiKeys.count`, default 1000.
    pub api_keys: Option<u64>,
    /// `iam.accessBindings.count` (on the cloud and everything in it), default 1000.
    pub access_bindings: Option<u64>,
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
    /// The exact `iss` of the tokens this federation trusts. Absent with `dev_issuer = true`.
    #[serde(default)]
    pub issuer: String,
    /// Trust this gateway's own dev issuer (`{public_url}/dev/issuer`, wherever the gateway
    /// listens) instead of naming an `issuer`. Needs `[dev_issuer] enabled = true`.
    #[serde(default)]
    pub dev_issuer: bool,
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
    /// Narrows `[tokens] resources` for exchanges through this federation: each value must be
    /// one of those. Absent: all of them; empty: none.
    pub resources: Option<Vec<String>>,
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

/// `[[permissions]]`: a permission of a downstream service, checked through the Authorize API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// `service.noun.verb`, e.g. `lockbox.secrets.getPayload`.
    pub id: String,
    /// Which primitive roles cover it: `read_metadata` (`auditor` and above), `read`
    /// (`viewer` and above), `manage` (`editor` and above) or `manage_access` (`admin` and
    /// the owners).
    pub class: String,
}

/// `[[roles]]`: a role of a downstream service, granted by access bindings like the built-in
/// ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// `service.roleName` or `service.noun.roleName`, e.g. `lockbox.payloadViewer`.
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Configured permissions it grants.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Configured roles whose permissions it also grants.
    #[serde(default)]
    pub includes: Vec<String>,
}

/// `[[api_key_scopes]]`: a scope an API key may be limited to, and the permissions it allows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyScopeConfig {
    /// 1 to 256 letters, digits, dots, hyphens and underscores, e.g. `yc.lockbox.payload.read`.
    pub id: String,
    /// Permissions (configured or built in) a key limited to this scope may be used for; at
    /// least one.
    #[serde(default)]
    pub permissions: Vec<String>,
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
    #[serde(default)]
    pub store: Option<StoreConfig>,
    #[serde(default)]
    pub iam: Option<IamConfig>,
    /// Files or directories (every `*.toml` inside, sorted) holding more directory items.
    #[serde(default)]
    pub include: Vec<PathBuf>,
    #[serde(default)]
    pub federations: Vec<Spanned<FederationConfig>>,
    #[serde(default)]
    pub service_accounts: Vec<Spanned<ServiceAccountConfig>>,
    #[serde(default)]
    pub federated_credentials: Vec<Spanned<CredentialConfig>>,
    /// Permissions of downstream services.
    #[serde(default)]
    pub permissions: Vec<Spanned<PermissionConfig>>,
    /// Roles of downstream services.
    #[serde(default)]
    pub roles: Vec<Spanned<RoleConfig>>,
    /// Scopes API keys may be limited to.
    #[serde(default)]
    pub api_key_scopes: Vec<Spanned<ApiKeyScopeConfig>>,
}

/// An included file: directory items, the permissions and roles of downstream services, and
/// API-key scopes, only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    #[serde(default)]
    pub federations: Vec<Spanned<FederationConfig>>,
    #[serde(default)]
    pub service_accounts: Vec<Spanned<ServiceAccountConfig>>,
    #[serde(default)]
    pub federated_credentials: Vec<Spanned<CredentialConfig>>,
    #[serde(default)]
    pub permissions: Vec<Spanned<PermissionConfig>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RoleConfig>>,
    #[serde(default)]
    pub api_key_scopes: Vec<Spanned<ApiKeyScopeConfig>>,
}
