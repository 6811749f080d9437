//! Compiling a configuration set: every item validated, every reference resolved, the whole
//! set checked together, and only then turned into a [`Directory`] and [`Settings`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;

use super::schema::{
    ApiKeyScopeConfig, ConfigFile, CredentialConfig, ExchangeConfig, FederationConfig,
    PermissionConfig, RoleConfig, ServiceAccountConfig, TlsConfig,
};
use super::settings::{DevIssuerSettings, IamSettings, Settings, StoreSettings, TlsSettings};
use super::source::{ItemPlace, Items, Place, Problems, Sourced, resolve};
use crate::exchange::Policy;
use crate::exchange::directory::{
    Directory, FederatedCredential, Federation, Files, KeySource, KeySourceKind, ServiceAccount,
};
use crate::exchange::issuer_keys::KeySet;
use crate::exchange::request::check_resource;
use crate::iam::catalog::{
    ApiKeyScopeDecl, Catalog, MAX_CONFIGURED_ROLES, PermissionDecl, RoleDecl, rules,
};
use crate::iam::roles::Class;
use crate::signing::{MAX_TOKEN_LIFETIME, SigningAlgorithm};
use crate::tls::dev_ca;

/// `[[permissions]]`, `[[roles]]` and `[[api_key_scopes]]` of every file (the main one and those
/// it includes, in that order): ids of the service syntax outside the built-in services, known
/// classes, no duplicates across files, references to configured permissions and roles only
/// (of any file), inclusions without a cycle, at most [`MAX_CONFIGURED_ROLES`] roles; scopes
/// of the scope syntax, each naming at least one permission the catalog knows (built in or
/// configured).
pub(super) fn compile_catalog(items: &mut Items, path: &Path, problems: &mut Problems) -> Catalog {
    let scopes: Vec<Sourced<ApiKeyScopeConfig>> = std::mem::take(&mut items.api_key_scopes);
    let permissions: Vec<Sourced<PermissionConfig>> = std::mem::take(&mut items.permissions);
    let roles: Vec<Sourced<RoleConfig>> = std::mem::take(&mut items.roles);
    let mut declared: Vec<PermissionDecl> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut first_permission: HashMap<&str, &Sourced<PermissionConfig>> = HashMap::new();
    for s in &permissions {
        let place = s.place("permissions", &s.item.id);
        if let Err(e) = rules::permission_id(&s.item.id) {
            problems.add(&place, e);
        }
        seen.insert(&s.item.id);
        if let Some(first) = first_permission.get(s.item.id.as_str()) {
            let at = problems.locate(&first.place("permissions", &first.item.id));
            problems.add(&place, format!("duplicate permission id (first at {at})"));
        } else {
            first_permission.insert(&s.item.id, s);
        }
        match Class::parse(&s.item.class) {
            Some(class) => declared.push(PermissionDecl {
                id: s.item.id.clone(),
                class,
            }),
            None => problems.add(
                &place,
                format!(
                    "class {:?} must be one of {}",
                    s.item.class,
                    Class::CONFIGURABLE.map(|(name, _)| name).join(", ")
                ),
            ),
        }
    }
    if roles.len() > MAX_CONFIGURED_ROLES {
        problems.add(
            &format!("{}: [[roles]]", path.display()),
            format!(
                "{} roles are declared; at most {MAX_CONFIGURED_ROLES} are",
                roles.len()
            ),
        );
    }
    let role_ids: HashMap<&str, usize> = roles
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s.item.id.as_str(), i))
        .collect();
    for (i, s) in roles.iter().enumerate() {
        let place = s.place("roles", &s.item.id);
        if let Err(e) = rules::role_id(&s.item.id) {
            problems.add(&place, e);
        }
        if let Some(&first) = role_ids.get(s.item.id.as_str())
            && first != i
            && let Some(first) = roles.get(first)
        {
            let at = problems.locate(&first.place("roles", &first.item.id));
            problems.add(&place, format!("duplicate role id (first at {at})"));
        }
        for p in &s.item.permissions {
            if seen.contains(p.as_str()) {
                continue;
            }
            let why = if crate::iam::roles::Permission::parse(p).is_some() {
                "is a built-in IAM permission: configured roles grant configured permissions only"
            } else {
                "names no permission of [[permissions]]"
            };
            problems.add(&place, format!("permissions: {p:?} {why}"));
        }
        for r in &s.item.includes {
            if role_ids.contains_key(r.as_str()) {
                continue;
            }
            let why = if crate::iam::roles::Role::parse(r).is_some() {
                "is a built-in IAM role: configured roles include configured roles only"
            } else {
                "names no role of [[roles]]"
            };
            problems.add(&place, format!("includes: {r:?} {why}"));
        }
        if s.item.permissions.is_empty() && s.item.includes.is_empty() {
            problems.warn(&place, "grants nothing: no permissions and no includes");
        }
    }
    // A cycle of inclusions: reported once, at the first role of it in file order.
    let mut reported: HashSet<usize> = HashSet::new();
    for start in 0..roles.len() {
        if reported.contains(&start) {
            continue;
        }
        if let Some(cycle) = inclusion_cycle(&roles, &role_ids, start) {
            let names: Vec<&str> = cycle
                .iter()
                .filter_map(|&i| roles.get(i).map(|r| r.item.id.as_str()))
                .collect();
            reported.extend(cycle.iter().copied());
            if let Some(s) = roles.get(start) {
                problems.add(
                    &s.place("roles", &s.item.id),
                    format!("includes itself: {}", names.join(" → ")),
                );
            }
        }
    }
    let decls: Vec<RoleDecl> = roles
        .into_iter()
        .map(|s| RoleDecl {
            id: s.item.id,
            description: s.item.description,
            permissions: s.item.permissions,
            includes: s.item.includes,
        })
        .collect();
    let scopes = compile_api_key_scopes(scopes, &seen, problems);
    Catalog::new(&declared, &decls).with_api_key_scopes(&scopes)
}

/// `[[api_key_scopes]]`: ids of the scope syntax, each once across files, each naming at least
/// one permission, every one of them built in or in `configured` (the ids of
/// `[[permissions]]`).
fn compile_api_key_scopes(
    scopes: Vec<Sourced<ApiKeyScopeConfig>>,
    configured: &HashSet<&str>,
    problems: &mut Problems,
) -> Vec<ApiKeyScopeDecl> {
    let mut first: HashMap<&str, &Sourced<ApiKeyScopeConfig>> = HashMap::new();
    for s in &scopes {
        let place = s.place("api_key_scopes", &s.item.id);
        if let Err(e) = rules::api_key_scope_id(&s.item.id) {
            problems.add(&place, e);
        }
        if let Some(earlier) = first.get(s.item.id.as_str()) {
            let at = problems.locate(&earlier.place("api_key_scopes", &earlier.item.id));
            problems.add(
                &place,
                format!("duplicate API-key scope id (first at {at})"),
            );
        } else {
            first.insert(&s.item.id, s);
        }
        if s.item.permissions.is_empty() {
            problems.add(
                &place,
                "permissions: a scope names at least one permission (built in or of [[permissions]])",
            );
        }
        for p in &s.item.permissions {
            if !configured.contains(p.as_str()) && crate::iam::roles::Permission::parse(p).is_none()
            {
                problems.add(
                    &place,
                    format!(
                        "permissions: {p:?} names no permission: neither a built-in IAM permission nor one of [[permissions]]"
                    ),
                );
            }
        }
    }
    scopes
        .iter()
        .map(|s| ApiKeyScopeDecl {
            id: s.item.id.clone(),
            permissions: s.item.permissions.clone(),
        })
        .collect()
}

/// The roles from `start` back to `start` through inclusions, if `start` is on a cycle.
fn inclusion_cycle(
    roles: &[Sourced<RoleConfig>],
    ids: &HashMap<&str, usize>,
    start: usize,
) -> Option<Vec<usize>> {
    fn walk(
        roles: &[Sourced<RoleConfig>],
        ids: &HashMap<&str, usize>,
        at: usize,
        start: usize,
        trail: &mut Vec<usize>,
        seen: &mut HashSet<usize>,
    ) -> bool {
        trail.push(at);
        for next in roles
            .get(at)
            .map(|r| r.item.includes.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| ids.get(id.as_str()).copied())
        {
            if next == start {
                trail.push(start);
                return true;
            }
            if seen.insert(next) && walk(roles, ids, next, start, trail, seen) {
                return true;
            }
        }
        trail.pop();
        false
    }
    let mut trail = Vec::new();
    let mut seen = HashSet::new();
    walk(roles, ids, start, start, &mut trail, &mut seen).then_some(trail)
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

pub(super) fn compile_settings(
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
    let grpc_endpoint = match &s.grpc_endpoint {
        Some(endpoint) => {
            if let Err(e) = check_endpoint(endpoint) {
                problems.add(&place("server"), format!("grpc_endpoint {e}"));
            }
            endpoint.clone()
        }
        None => endpoint_of(&public_url).unwrap_or_default(),
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
    let tls = s
        .tls
        .as_ref()
        .map(|t| compile_tls(t, s.listen, base, &place("server.tls"), problems));
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
    check_resources(&t.resources, &place("tokens"), problems);
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
    for file in tls.iter().flat_map(|t| [&t.cert_file, &t.key_file]) {
        if let Some(dir) = file.parent() {
            watch.push(dir.to_path_buf());
        }
    }
    watch.sort();
    watch.dedup();
    if file.dev_issuer.enabled {
        problems.warn(
            &place("dev_issuer"),
            "the dev issuer is enabled: anyone who can reach /dev/issuer/token gets caller tokens that federations trusting it accept; for local round trips only",
        );
    }
    let dev_issuer = file.dev_issuer.enabled.then(|| DevIssuerSettings {
        key_file: file.dev_issuer.key_file.as_ref().map_or_else(
            || signing_key_file.with_file_name("dev-issuer-key.pem"),
            |p| resolve(base, p),
        ),
    });
    let store = file
        .store
        .as_ref()
        .and_then(|store| match store_settings(base, &store.url) {
            Ok(settings) => Some(settings),
            Err(e) => {
                problems.add(&place("store"), format!("url {e}"));
                None
            }
        });
    let iam = compile_iam(
        file,
        &public_url,
        &grpc_endpoint,
        base,
        &place("iam"),
        problems,
    );
    Settings {
        store,
        iam,
        listen: s.listen,
        tls,
        token_audience: t.audience.clone().unwrap_or_else(|| public_url.clone()),
        public_url,
        grpc_endpoint,
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
            resources: t.resources.clone(),
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

/// `host:port` of a URL: the port written, or the scheme's (443, 80).
fn endpoint_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = match url.host()? {
        url::Host::Ipv6(ip) => format!("[{ip}]"),
        host => host.to_string(),
    };
    Some(format!("{host}:{}", url.port_or_known_default()?))
}

/// A `host:port` to dial: a host without scheme, path or white space, and a port 1–65535.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let port = endpoint
        .rsplit_once(':')
        .filter(|(host, _)| {
            !host.is_empty()
                && !host.contains(['/', '@', '?', '#'])
                && !host.chars().any(char::is_whitespace)
        })
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    match port {
        Some(_) => Ok(()),
        None => Err(format!(
            "{endpoint:?} must be host:port (the address gRPC clients dial, e.g. \"wif.example:443\")"
        )),
    }
}

/// The default accepted audiences of service-account JWTs: `{public_url}/iam/v1/tokens` (REST
/// clients), and `https://iam.{grpc_endpoint}/iam/v1/tokens`, the one Yandex SDKs sign for when
/// they dial `grpc_endpoint` (without `:443` too, as an SDK given a bare host writes it).
pub fn default_token_audiences(public_url: &str, grpc_endpoint: &str) -> Vec<String> {
    let mut audiences = vec![format!("{public_url}/iam/v1/tokens")];
    let mut add = |audience: String| {
        if !audiences.contains(&audience) {
            audiences.push(audience);
        }
    };
    if !grpc_endpoint.is_empty() {
        add(format!("https://iam.{grpc_endpoint}/iam/v1/tokens"));
        if let Some(host) = grpc_endpoint.strip_suffix(":443") {
            add(format!("https://iam.{host}/iam/v1/tokens"));
        }
    }
    audiences
}

/// `[server.tls]` with its paths resolved, and the rules that need no file: the certificate and
/// key are read at start, on every reload and by `check-config` ([`TlsSettings`]).
fn compile_tls(
    t: &TlsConfig,
    plain: SocketAddr,
    base: &Path,
    place: &String,
    problems: &mut Problems,
) -> TlsSettings {
    let (tls, plain_ip) = (t.listen, plain.ip());
    if tls.port() != 0
        && tls.port() == plain.port()
        && (tls.ip() == plain_ip || tls.ip().is_unspecified() || plain_ip.is_unspecified())
    {
        problems.add(
            place,
            format!("listen {tls} overlaps the plain listener's {plain} ([server] listen or --listen): give the TLS listener an address of its own"),
        );
    }
    let cert_file = resolve(base, &t.cert_file);
    let key_file = resolve(base, &t.key_file);
    if cert_file == key_file {
        problems.add(
            place,
            format!(
                "cert_file and key_file are the same file {}: the certificate and its key are two files",
                cert_file.display()
            ),
        );
    }
    let dev_ca_dir = if t.generate_dev_ca {
        let dir = match &t.dev_ca_dir {
            Some(dir) => resolve(base, dir),
            None => cert_file
                .parent()
                .map_or_else(|| base.to_path_buf(), Path::to_path_buf),
        };
        let ca_files = [dev_ca::CA_CERT_FILE, dev_ca::CA_KEY_FILE].map(|f| dir.join(f));
        for (name, file) in [("cert_file", &cert_file), ("key_file", &key_file)] {
            if ca_files.contains(file) {
                problems.add(
                    place,
                    format!(
                        "{name} {} is a file of the development CA in {}",
                        file.display(),
                        dir.display()
                    ),
                );
            }
        }
        Some(dir)
    } else {
        if t.dev_ca_dir.is_some() {
            problems.add(place, "dev_ca_dir is set but generate_dev_ca is not");
        }
        None
    };
    TlsSettings {
        listen: t.listen,
        cert_file,
        key_file,
        dev_ca_dir,
    }
}

/// `[iam]`, with its defaults: the audiences of [`default_token_audiences`] and
/// `admin-key.json` beside the config file.
fn compile_iam(
    file: &ConfigFile,
    public_url: &str,
    grpc_endpoint: &str,
    base: &Path,
    place: &String,
    problems: &mut Problems,
) -> IamSettings {
    let iam = file.iam.clone().unwrap_or_default();
    if file.iam.is_some() && file.store.is_none() {
        problems.warn(
            place,
            "[iam] has no effect without [store]: the IAM API is off",
        );
    }
    let token_audiences = match iam.token_audiences {
        None => default_token_audiences(public_url, grpc_endpoint),
        Some(audiences) => {
            if audiences.is_empty() || audiences.len() > 100 {
                problems.add(place, "token_audiences must list 1 to 100 values");
            }
            for a in &audiences {
                if a.is_empty() || a.len() > 255 || a.trim() != a {
                    problems.add(
                        place,
                        format!(
                            "token_audiences value {a:?} must be 1 to 255 characters without surrounding white space"
                        ),
                    );
                }
            }
            audiences
        }
    };
    let mut secret_keys: Vec<crate::iam::sealing::SecretKeyFile> = Vec::new();
    for key in &iam.secret_keys {
        let file = resolve(base, &key.file);
        if !crate::iam::sealing::is_key_id(&key.id) {
            problems.add(
                place,
                format!(
                    "secret_keys id {:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                    key.id
                ),
            );
        }
        if secret_keys.iter().any(|k| k.id == key.id) {
            problems.add(
                place,
                format!("secret_keys id {:?} is listed twice", key.id),
            );
        }
        if secret_keys.iter().any(|k| k.file == file) {
            problems.add(
                place,
                format!(
                    "secret_keys file {} is listed twice: each key is a file of its own",
                    file.display()
                ),
            );
        }
        if key.generate_if_missing {
            problems.warn(
                place,
                format!(
                    "secret_keys {:?} has generate_if_missing: a key generated on one machine does not open what another sealed; for development only",
                    key.id
                ),
            );
        }
        secret_keys.push(crate::iam::sealing::SecretKeyFile {
            id: key.id.clone(),
            file,
            generate_if_missing: key.generate_if_missing,
        });
    }
    IamSettings {
        secret_keys,
        token_audiences,
        allow_http_to_loopback: iam.allow_http_to_loopback,
        federation_max_token_lifetime: file.exchange.max_token_lifetime_seconds,
        quotas: {
            let d = crate::iam::quota::Quotas::default();
            let q = &iam.quotas;
            crate::iam::quota::Quotas {
                service_accounts: q.service_accounts.unwrap_or(d.service_accounts),
                federations: q.federations.unwrap_or(d.federations),
                federated_credentials: q.federated_credentials.unwrap_or(d.federated_credentials),
                authorized_keys: q.authorized_keys.unwrap_or(d.authorized_keys),
                access_keys: q.access_keys.unwrap_or(d.access_keys),
                api_keys: q.api_keys.unwrap_or(d.api_keys),
                access_bindings: q.access_bindings.unwrap_or(d.access_bindings),
            }
        },
        bootstrap_key_file: resolve(
            base,
            iam.bootstrap_key_file
                .as_deref()
                .unwrap_or(Path::new("admin-key.json")),
        ),
    }
}

/// The store to open: a `sqlite:` URL gets its path resolved against `base` and, unless it
/// names a `mode`, `mode=rwc` (create the file if missing); `postgres://` and `postgresql://`
/// URLs are kept as written. Errors never repeat the URL: it may hold a password.
pub fn store_settings(base: &Path, url: &str) -> Result<StoreSettings, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err("names no database file".to_owned());
        }
        if path == ":memory:" {
            return Ok(StoreSettings {
                url: url.to_owned(),
                sqlite_file: None,
            });
        }
        let file = resolve(base, Path::new(&percent_decoded(path)?));
        let encoded = file
            .display()
            .to_string()
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23");
        let has_mode = query.split('&').any(|p| p.starts_with("mode="));
        let query = match (query.is_empty(), has_mode) {
            (true, _) => "?mode=rwc".to_owned(),
            (false, true) => format!("?{query}"),
            (false, false) => format!("?{query}&mode=rwc"),
        };
        return Ok(StoreSettings {
            url: format!("sqlite://{encoded}{query}"),
            sqlite_file: Some(file),
        });
    }
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "postgres" | "postgresql" => Ok(StoreSettings {
            url: url.to_owned(),
            sqlite_file: None,
        }),
        _ => Err("must be a sqlite:// or postgres:// URL".to_owned()),
    }
}

/// The path of a URL with its `%XX` escapes decoded (as SQLite's driver reads it).
fn percent_decoded(path: &str) -> Result<String, String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "has a path that is not UTF-8 once decoded".to_owned())
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

/// Points the federations that trust the dev issuer at it: `{public_url}/dev/issuer`, so that
/// the dev setup follows the address the gateway serves on.
fn resolve_dev_issuer(items: &mut Items, dev_issuer_url: Option<&str>, problems: &mut Problems) {
    for s in &mut items.federations {
        if !s.item.dev_issuer {
            continue;
        }
        match dev_issuer_url {
            Some(url) if s.item.issuer.is_empty() => {
                s.item.issuer = url.to_owned();
                // The gateway fetches its own dev issuer's keys over its public URL.
                s.item.allow_insecure_http |= url.starts_with("http://");
            }
            Some(_) => problems.add(
                &s.place("federations", &s.item.id),
                "set either issuer or dev_issuer = true, not both",
            ),
            None => problems.add(
                &s.place("federations", &s.item.id),
                "dev_issuer = true needs the dev issuer: [dev_issuer] enabled = true",
            ),
        }
    }
}

/// A credential named as written: by its id, or by its subject when it has none (never by the id
/// derived from its binding, which appears nowhere in the files).
fn credential_place(s: &Sourced<CredentialConfig>) -> ItemPlace<'_> {
    match &s.item.id {
        Some(id) => s.place("federated_credentials", id),
        None => s.place_by(
            "federated_credentials",
            "external_subject_id",
            &s.item.external_subject_id,
        ),
    }
}

/// What a credential binds: no two may bind the same.
fn binding(c: &CredentialConfig) -> (&str, &str, &str) {
    (
        &c.federation_id,
        &c.service_account_id,
        &c.external_subject_id,
    )
}

/// What a credential repeats of an earlier one.
#[derive(Clone, Copy)]
enum Repeated {
    Id,
    Binding,
}

/// Reports the credentials (`repeated`: index, in order) whose id or binding an earlier one has,
/// each with the place of the first one.
fn report_repeated(
    credentials: &[Sourced<CredentialConfig>],
    ids: &[String],
    repeated: &[(usize, Repeated)],
    problems: &mut Problems,
) {
    if repeated.is_empty() {
        return;
    }
    // The first credential of each repeated id and binding.
    let mut first_id: HashMap<&str, Option<usize>> = HashMap::new();
    let mut first_binding: HashMap<(&str, &str, &str), Option<usize>> = HashMap::new();
    for &(i, what) in repeated {
        if let (Some(s), Some(id)) = (credentials.get(i), ids.get(i)) {
            match what {
                Repeated::Id => first_id.insert(id, None),
                Repeated::Binding => first_binding.insert(binding(&s.item), None),
            };
        }
    }
    for (i, (s, id)) in credentials.iter().zip(ids).enumerate() {
        if let Some(first) = first_id.get_mut(id.as_str()) {
            first.get_or_insert(i);
        }
        if let Some(first) = first_binding.get_mut(&binding(&s.item)) {
            first.get_or_insert(i);
        }
    }
    for &(i, what) in repeated {
        let (Some(s), Some(id)) = (credentials.get(i), ids.get(i)) else {
            continue;
        };
        let first = match what {
            Repeated::Id => first_id.get(id.as_str()),
            Repeated::Binding => first_binding.get(&binding(&s.item)),
        };
        let Some(first) = first.copied().flatten().and_then(|f| credentials.get(f)) else {
            continue;
        };
        let at = problems.locate(&credential_place(first));
        let message = match what {
            Repeated::Binding => format!(
                "the same federation, service account and subject are bound twice (first at {at})"
            ),
            Repeated::Id if s.item.id.is_some() => {
                format!("duplicate federated credential id (first at {at})")
            }
            // Someone wrote a derived id by hand.
            Repeated::Id if first.item.id.is_some() => format!(
                "the id derived from its binding, {id:?}, is the id of the credential at {at}; give one of them another id"
            ),
            // Two derived ids are equal only when their bindings are: reported as such.
            Repeated::Id => continue,
        };
        problems.add(&credential_place(s), message);
    }
}

/// What is valid in a federation but probably not meant.
fn warn_federation(f: &FederationConfig, place: &ItemPlace<'_>, problems: &mut Problems) {
    if f.issuer.len() > 1 && f.issuer.ends_with('/') {
        problems.warn(
            place,
            format!(
                "issuer {:?} ends with a slash; matching is exact: tokens must carry exactly this iss",
                f.issuer
            ),
        );
    }
    // Where keys are fetched from over the network, if they are.
    let fetched = match (&f.jwks_url, &f.jwks, &f.jwks_file) {
        (Some(url), _, _) => Some(url),
        (None, None, None) => Some(&f.issuer),
        _ => None,
    };
    if f.allow_insecure_http
        && let Some(url) = fetched.and_then(|u| url::Url::parse(u).ok())
        && url.scheme() == "http"
        && !is_loopback(&url)
    {
        problems.warn(
            place,
            format!(
                "keys are fetched over plain http from {:?}, which is not a loopback address: anyone on the path can substitute them",
                url.host_str().unwrap_or_default()
            ),
        );
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a `resources` list: each value a well-formed RFC 8707 target, none twice.
fn check_resources(resources: &[String], place: &impl Place, problems: &mut Problems) {
    let mut seen = HashSet::new();
    for r in resources {
        if let Err(why) = check_resource(r) {
            problems.add(
                place,
                format!("resources value {r:?} is not an absolute URI without a fragment of at most 255 characters: {why}"),
            );
        }
        if !seen.insert(r.as_str()) {
            problems.add(place, format!("resources lists {r:?} twice"));
        }
    }
}

/// `resources` of the configuration's federations are checked against `allowed`
/// (`[tokens] resources`): a federation narrows the gateway's list, it never extends it.
pub(super) fn compile_directory(
    mut items: Items,
    exchange: &ExchangeConfig,
    allowed: &[String],
    dev_issuer_url: Option<&str>,
    problems: &mut Problems,
) -> Directory {
    resolve_dev_issuer(&mut items, dev_issuer_url, problems);
    let mut sources: HashMap<String, Arc<KeySource>> = HashMap::new();
    let mut federations = Vec::with_capacity(items.federations.len());
    // Each id and the federation that first has it.
    let mut fed_ids: HashMap<&str, &Sourced<FederationConfig>> = HashMap::new();
    for s in &items.federations {
        let f = &s.item;
        let place = s.place("federations", &f.id);
        if let Err(e) = check_id(&f.id) {
            problems.add(&place, e);
        }
        if let Some(first) = fed_ids.get(f.id.as_str()) {
            let at = problems.locate(&first.place("federations", &f.id));
            problems.add(&place, format!("duplicate federation id (first at {at})"));
        } else {
            fed_ids.insert(&f.id, s);
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
        if let Some(resources) = &f.resources {
            check_resources(resources, &place, problems);
            for r in resources.iter().filter(|r| !allowed.contains(r)) {
                problems.add(
                    &place,
                    format!("resources value {r:?} is not in [tokens] resources; a federation may only narrow that list"),
                );
            }
        }
        warn_federation(f, &place, problems);
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
                    digest: crate::signing::hex(
                        &digest::digest(&digest::SHA256, text.as_bytes()).as_ref()[..12],
                    ),
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
            resources: f.resources.clone(),
        });
    }

    let mut accounts = Vec::with_capacity(items.service_accounts.len());
    let mut sa_ids: HashMap<&str, &Sourced<ServiceAccountConfig>> = HashMap::new();
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
        if let Some(first) = sa_ids.get(a.id.as_str()) {
            let at = problems.locate(&first.place("service_accounts", &a.id));
            problems.add(
                &place,
                format!("duplicate service account id (first at {at})"),
            );
        } else {
            sa_ids.insert(&a.id, s);
        }
        accounts.push(ServiceAccount {
            id: a.id.clone(),
            name: a.name.clone().unwrap_or_else(|| a.id.clone()),
            folder_id: a.folder_id.clone(),
            suspended: false,
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
    // Repeated ids and bindings are rare: this pass only notes them, and where each first
    // occurrence is, is looked up afterwards (maps of every first would cost tens of MB here).
    let mut repeated = Vec::new();
    {
        let mut seen_ids: HashSet<&str> = HashSet::with_capacity(ids.len());
        let mut bindings: HashSet<(&str, &str, &str)> = HashSet::with_capacity(ids.len());
        for (i, (s, id)) in items.credentials.iter().zip(&ids).enumerate() {
            let c = &s.item;
            let place = credential_place(s);
            if c.id.is_some()
                && let Err(e) = check_id(id)
            {
                problems.add(&place, e);
            }
            if !seen_ids.insert(id) {
                repeated.push((i, Repeated::Id));
            }
            if !fed_ids.contains_key(c.federation_id.as_str()) {
                problems.add(
                    &place,
                    format!("federation_id {:?} names no federation", c.federation_id),
                );
            }
            if !sa_ids.contains_key(c.service_account_id.as_str()) {
                problems.add(
                    &place,
                    format!(
                        "service_account_id {:?} names no service account",
                        c.service_account_id
                    ),
                );
            }
            let subject = &c.external_subject_id;
            if subject.is_empty() || subject.len() > 1000 {
                problems.add(&place, "external_subject_id must be 1 to 1000 characters (a binding never matches any subject)");
            } else if subject.trim() != subject {
                problems.add(
                    &place,
                    "external_subject_id has surrounding white space; subjects are compared exactly",
                );
            } else if subject.contains('*') {
                problems.warn(
                    &place,
                    "'*' is not a wildcard: subjects are compared exactly, so this matches only a subject with a literal '*'",
                );
            }
            if !bindings.insert(binding(c)) {
                repeated.push((i, Repeated::Binding));
            }
        }
    }
    report_repeated(&items.credentials, &ids, &repeated, problems);
    if !problems.is_empty() {
        return Directory::default();
    }
    let mut files = Files::default();
    let mut file_index: HashMap<*const PathBuf, u16> = HashMap::new();
    let mut index_of = |file: &Arc<PathBuf>| -> u16 {
        *file_index.entry(Arc::as_ptr(file)).or_insert_with(|| {
            files.paths.push(file.as_ref().clone());
            u16::try_from(files.paths.len() - 1).unwrap_or(u16::MAX)
        })
    };
    let federation_files: Vec<u16> = items
        .federations
        .iter()
        .map(|s| index_of(&s.file))
        .collect();
    let account_files: Vec<u16> = items
        .service_accounts
        .iter()
        .map(|s| index_of(&s.file))
        .collect();
    let mut credential_files = Vec::with_capacity(items.credentials.len());
    let credentials = items
        .credentials
        .into_iter()
        .zip(ids)
        .map(|(s, id)| {
            credential_files.push(index_of(&s.file));
            FederatedCredential {
                id,
                federation_id: s.item.federation_id,
                service_account_id: s.item.service_account_id,
                external_subject_id: s.item.external_subject_id,
            }
        })
        .collect();
    files.federations = federation_files;
    files.service_accounts = account_files;
    files.credentials = credential_files;
    Directory::build_from_files(federations, accounts, credentials, files)
}
