//! The `wif-gateway` binary: a thin command line over the library.
//!
//! - `serve --config FILE [--listen ADDR] [--tls-listen ADDR] [--store-url URL]`: run the
//!   gateway.
//! - `check-config --config FILE`: validate a configuration set exactly as `serve` would.
//! - `keygen [--alg ES256|EdDSA|RS256] --out FILE`: write a new PKCS#8 signing key.
//! - `exchange …`: the client for CI jobs and pods.
//! - `iam bootstrap-key --config FILE --out PATH`: a new authorized key for the IAM
//!   administrator, written as a Yandex key file.
//! - `iam service-account|key|workload-identity …`, `resource-manager folder …`: manage the IAM
//!   store through the REST API, as `yc` does ([`wif_gateway::cli`]).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use wif_gateway::config;
use wif_gateway::iam::sealing;
use wif_gateway::signing::{SigningAlgorithm, SigningKey};

#[derive(Parser)]
#[command(
    name = "wif-gateway",
    version,
    about = "Workload Identity Federation gateway: exchange an OIDC JWT for a service account's access token"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WIF_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The configuration file.
        #[arg(long, env = "WIF_CONFIG")]
        config: PathBuf,
        /// Listen on this address instead of the config's `[server] listen`.
        #[arg(long, env = "WIF_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// Listen for TLS on this address instead of the config's `[server.tls] listen`; no
        /// effect without `[server.tls]`.
        #[arg(long, env = "WIF_TLS_LISTEN")]
        tls_listen: Option<std::net::SocketAddr>,
        /// The IAM store's URL (sqlite://PATH or postgres://…) instead of the config's
        /// `[store] url`; turns the store on even without `[store]`.
        #[arg(long, env = "WIF_STORE_URL", hide_env_values = true)]
        store_url: Option<String>,
    },
    /// Validate a configuration set (same code as `serve`) and load its signing keys and TLS
    /// certificate; exit 1 if anything is invalid.
    #[command(after_help = CHECK_CONFIG_HELP)]
    CheckConfig {
        // `--config` and `--format`.
        #[command(flatten)]
        config: CheckConfigArgs,
    },
    /// Generate a signing key (PKCS#8 PEM, mode 0600) and print its key id.
    Keygen {
        /// The signature algorithm of the key.
        #[arg(long, value_enum, default_value_t = KeyAlg::Es256)]
        alg: KeyAlg,
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Exchange a caller JWT (CI job or pod token) for a service account's access token and
    /// print it, or write it to --out (mode 0600, atomic); --refresh keeps --out fresh.
    #[command(
        after_help = wif_gateway::client::EXIT_STATUS_HELP,
        group = clap::ArgGroup::new("token").required(true).args(["token_file", "token_env"])
    )]
    Exchange(wif_gateway::client::Options),
    /// Manage the IAM store.
    Iam {
        #[command(subcommand)]
        command: IamCommand,
    },
    /// Manage folders and their access bindings through the REST API (`yc resource-manager`).
    ResourceManager(wif_gateway::cli::ResourceManagerArgs),
}

#[derive(Subcommand)]
enum IamCommand {
    /// Create a new authorized key for the IAM administrator (the service account the first
    /// start created) directly in the store, and write it as a Yandex key file (mode 0600):
    /// for when the bootstrap key file is lost.
    BootstrapKey {
        /// The configuration file (its `[store]` names the store).
        #[arg(long, env = "WIF_CONFIG")]
        config: PathBuf,
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// The IAM store's URL instead of the config's `[store] url`.
        #[arg(long, env = "WIF_STORE_URL", hide_env_values = true)]
        store_url: Option<String>,
    },
    #[command(flatten)]
    Api(wif_gateway::cli::IamCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyAlg {
    #[value(name = "ES256", alias = "es256")]
    Es256,
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
}

/// Logs to stderr, in colour only when stderr is a terminal (no escape codes in files and CI logs).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            tls_listen,
            store_url,
        } => serve(config, listen, tls_listen, store_url),
        Command::CheckConfig { config } => check_config(&config),
        Command::Keygen { alg, out, force } => keygen(alg, &out, force),
        Command::Exchange(options) => Ok(wif_gateway::client::main(&options, shutdown_signal())),
        Command::Iam {
            command:
                IamCommand::BootstrapKey {
                    config,
                    out,
                    force,
                    store_url,
                },
        } => bootstrap_key(&config, &out, force, store_url),
        Command::Iam {
            command: IamCommand::Api(command),
        } => Ok(wif_gateway::cli::run_iam(command)),
        Command::ResourceManager(args) => Ok(wif_gateway::cli::run_resource_manager(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command-line error (or the `--help` and `--version` text) as clap would, except that
/// a value that looks like a token, e.g. `exchange "$WIF_TOKEN"`, is not shown
/// ([`wif_gateway::client::redact_tokens`]). Returns clap's exit status: 2 for usage errors.
fn usage_error(e: &clap::Error) -> ExitCode {
    let text = e.to_string();
    let shown = wif_gateway::client::redact_tokens(&text);
    if shown == text {
        let _ = e.print();
    } else if e.use_stderr() {
        eprint!("{shown}");
    } else {
        print!("{shown}");
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

fn check_config(args: &CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let path = &args.config;
    let mut report = CheckReport {
        valid: false,
        file: path.display().to_string(),
        federations: None,
        service_accounts: None,
        federated_credentials: None,
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    // The message of a set that did not load (every problem, in one block).
    let mut failed = None;
    match config::load(path) {
        Ok(c) => {
            let d = &c.directory;
            report.federations = Some(d.federation_count());
            report.service_accounts = Some(d.service_account_count());
            report.federated_credentials = Some(d.credential_count());
            report.warnings = c.warnings;
            let key = &c.settings.signing_key_file;
            let mut problems = Vec::new();
            if key.exists() {
                if let Err(e) = SigningKey::from_file(key) {
                    problems.push(format!("signing key: {e}"));
                }
            } else if c.settings.generate_signing_key.is_none() {
                problems.push(format!("signing key {} does not exist", key.display()));
            }
            for p in &c.settings.published_key_files {
                if let Err(e) = SigningKey::from_file(p) {
                    problems.push(format!("published key: {e}"));
                }
            }
            if let Some(Err(e)) = c.settings.tls.as_ref().map(config::TlsSettings::check) {
                problems.push(format!("[server.tls]: {e}"));
            }
            for key in &c.settings.iam.secret_keys {
                if !key.file.exists() && key.generate_if_missing {
                    continue;
                }
                if let Err(e) = sealing::read_key_file(&key.file) {
                    problems.push(format!("[iam] secret_keys {:?}: {e}", key.id));
                } else if sealing::readable_by_others(&key.file) == Some(true) {
                    report.warnings.push(format!(
                        "{}: [iam] secret_keys {:?}: {} may be read by others than its owner (mode 0600 keeps it private)",
                        path.display(),
                        key.id,
                        key.file.display()
                    ));
                }
            }
            report.problems = problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect();
        }
        Err(e) => {
            failed = Some(format!("{}: {e}", path.display()));
            report.warnings = e.warnings;
            report.problems = e.problems;
        }
    }
    report.valid = report.problems.is_empty();
    match args.format {
        CheckFormat::Text => {
            if let (Some(f), Some(a), Some(c)) = (
                report.federations,
                report.service_accounts,
                report.federated_credentials,
            ) {
                println!(
                    "{}: directory ok ({}, {}, {})",
                    report.file,
                    counted(f, "federation", "federations"),
                    counted(a, "service account", "service accounts"),
                    counted(c, "federated credential", "federated credentials"),
                );
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            match failed {
                Some(message) => eprintln!("{message}"),
                None => report.problems.iter().for_each(|p| eprintln!("{p}")),
            }
        }
        CheckFormat::Json => println!("{}", serde_json::to_string(&report)?),
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `n thing` or `n things`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[derive(clap::Args)]
struct CheckConfigArgs {
    /// The configuration file.
    #[arg(long, env = "WIF_CONFIG")]
    config: PathBuf,
    /// Output: `text` for people, `json` (one object, stable keys) for programs.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
}

/// Scheduler ticks between two polls of the operating system for ready sockets and timers
/// while every worker is busy (tokio's default is 61). Under full exchange load a tick is an
/// exchange, so at 61 a reply from PostgreSQL waited dozens of exchanges before its task was
/// woken, and a write, which waits on the database several times while it holds the store's
/// change counter, ran at under 70 a second
/// (`docs/performance.md#writes-under-exchange-load`).
const EVENT_INTERVAL: u32 = 8;

/// What `check-config` prints, after its options in `--help`.
const CHECK_CONFIG_HELP: &str = "\
Output:
  text  `FILE: directory ok (N federations, N service accounts, N federated credentials)` on
        stdout when the set loads; then on stderr a `warning: …` line per warning and every
        problem.
  json  one line on stdout, an object with these keys, always all of them and in this order:
        \"valid\" (true or false), \"file\" (the --config path), \"federations\",
        \"service_accounts\", \"federated_credentials\" (counts, or null when the set did not
        load), \"warnings\" and \"problems\" (arrays of strings, each starting with its file
        and, for an item, its line: `FILE:LINE: federations[0] (id \"…\"): …`).
The exit status does not depend on the format: 0 if valid, 1 if not.";

/// `check-config --format json`: the keys and their order are stable.
#[derive(serde::Serialize)]
struct CheckReport {
    valid: bool,
    file: String,
    federations: Option<usize>,
    service_accounts: Option<usize>,
    federated_credentials: Option<usize>,
    warnings: Vec<String>,
    problems: Vec<String>,
}

fn keygen(alg: KeyAlg, out: &std::path::Path, force: bool) -> anyhow::Result<ExitCode> {
    if out.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", out.display());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => anyhow::bail!("{}: {} is not a directory", out.display(), dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "{}: the directory {} does not exist; create it first",
                out.display(),
                dir.display()
            ),
            Err(e) => anyhow::bail!("{}: {}: {e}", out.display(), dir.display()),
        }
    }
    let alg = match alg {
        KeyAlg::Es256 => SigningAlgorithm::ES256,
        KeyAlg::EdDsa => SigningAlgorithm::EdDSA,
        KeyAlg::Rs256 => SigningAlgorithm::RS256,
    };
    let (key, pem_text) = SigningKey::generate(alg)?;
    wif_gateway::files::write_private(out, &pem_text).map_err(anyhow::Error::msg)?;
    println!("{}", key.kid());
    Ok(ExitCode::SUCCESS)
}

/// Replaces the config's store with `url` (`--store-url`, `WIF_STORE_URL`); a relative SQLite
/// path there is relative to the working directory.
fn override_store(settings: &mut config::Settings, url: Option<String>) -> anyhow::Result<()> {
    if let Some(url) = url {
        let store = config::validate::store_settings(std::path::Path::new("."), &url)
            .map_err(|e| anyhow::anyhow!("--store-url (WIF_STORE_URL) {e}"))?;
        settings.store = Some(store);
    }
    Ok(())
}

fn serve(
    path: PathBuf,
    listen: Option<std::net::SocketAddr>,
    tls_listen: Option<std::net::SocketAddr>,
    store_url: Option<String>,
) -> anyhow::Result<ExitCode> {
    wif_gateway::tls::install_default_provider();
    let mut config = config::load_with(&path, listen)?;
    let wanted = config.settings.listen;
    // Bound before the state is built, so that port 0 works: the public URL (and the dev issuer
    // that follows it) is then the address actually bound.
    let listener = bind(wanted, "")?;
    let bound = listener.local_addr().context("reading the bound address")?;
    if bound != wanted {
        config = config::load_with(&path, Some(bound))?;
    }
    // The TLS listener's address as bound (port 0 too) is the one the state and reloads keep.
    let tls_listener = match config.settings.tls.as_mut() {
        Some(tls) => {
            let listener = bind(tls_listen.unwrap_or(tls.listen), " (TLS)")?;
            tls.listen = listener
                .local_addr()
                .context("reading the bound TLS address")?;
            Some(listener)
        }
        None => {
            if tls_listen.is_some() {
                tracing::warn!(
                    "--tls-listen (WIF_TLS_LISTEN) has no effect: the configuration has no [server.tls]"
                );
            }
            None
        }
    };
    override_store(&mut config.settings, store_url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let state = wif_gateway::AppState::start(config).await?;
        let listeners = wif_gateway::Listeners {
            plain: tokio::net::TcpListener::from_std(listener).context("listening")?,
            tls: tls_listener
                .map(tokio::net::TcpListener::from_std)
                .transpose()
                .context("listening (TLS)")?,
        };
        wif_gateway::run(listeners, state, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A non-blocking listener on `addr`; `what` tells it apart in errors.
fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}{what}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("configuring the listener{what}"))?;
    Ok(listener)
}

fn bootstrap_key(
    path: &std::path::Path,
    out: &std::path::Path,
    force: bool,
    store_url: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut config = config::load(path)?;
    override_store(&mut config.settings, store_url)?;
    let Some(store) = config.settings.store.clone() else {
        anyhow::bail!(
            "{}: no [store] section (and no --store-url): there is no IAM store",
            path.display()
        );
    };
    if out.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", out.display());
    }
    if let Some(dir) = store
        .sqlite_file
        .as_deref()
        .and_then(std::path::Path::parent)
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        anyhow::bail!(
            "the IAM store's directory {} does not exist: is [store] url right?",
            dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (administrator, key) = runtime.block_on(async {
        let opened = wif_gateway::iam::store::Store::open(&store.url)
            .await
            .with_context(|| format!("IAM store {}", store.redacted()))?;
        let made = wif_gateway::iam::bootstrap::new_administrator_key(
            &opened,
            out,
            wif_gateway::time::now_unix(),
        )
        .await;
        opened.close().await;
        anyhow::Ok(made?)
    })?;
    println!(
        "wrote authorized key {} of service account {} to {}",
        key.id,
        administrator.service_account_id,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
