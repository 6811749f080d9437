//! `wif-gateway iam …` and `wif-gateway resource-manager …`: manage the gateway's IAM store
//! through its REST API, with the names and output of `yc iam` and `yc resource-manager`.
//!
//! | command | API |
//! |---|---|
//! | `iam service-account create\|list\|get\|update\|delete` | `/iam/v1/serviceAccounts` |
//! | `iam key create\|list\|delete` | `/iam/v1/keys`; `create -o FILE` writes a Yandex key file (mode 0600) |
//! | `iam workload-identity oidc federation create\|list\|get\|update\|delete` | `/iam/v1/workload/oidc/federations` |
//! | `iam workload-identity federated-credential create\|list\|get\|delete` | `/iam/v1/workload/federatedCredentials` |
//! | `… add-access-binding\|remove-access-binding\|list-access-bindings` on service accounts, federations and `resource-manager folder` | `{resource}:updateAccessBindings`, `{resource}:listAccessBindings` |
//!
//! Every command authenticates with a Yandex key file (`--key-file`, `WIF_KEY_FILE`) against
//! `--endpoint` (`WIF_ENDPOINT`) through [`session::Session`], and prints with [`output`]: a
//! table for a list, `key: value` lines for one resource (a mutation prints its operation's
//! `response`), or the API's JSON with `--format json`. A failure prints `ERROR: …` on stderr
//! (`ERROR: rpc error: code = NOT_FOUND desc = …` for an API refusal) and exits with status 1.

pub mod output;
pub mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};

use output::{Format, Table, field};
use session::{CliError, DEFAULT_ENDPOINT, Session, segment};

/// Where the gateway is, who calls it, and how answers are shown: options of every command.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// A Yandex authorized key file (`id`, `service_account_id`, `private_key`), e.g. the
    /// bootstrap administrator's; it gets an IAM token at ENDPOINT/iam/v1/tokens.
    #[arg(long, global = true, value_name = "PATH", env = "WIF_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The gateway's base URL.
    #[arg(long, global = true, value_name = "URL", env = "WIF_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// `text`: a table for lists, `key: value` lines for one resource; `json`: the API's JSON.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The `iam` commands that speak the IAM API.
#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Service accounts and their access bindings (`yc iam service-account`).
    ServiceAccount(ServiceAccountArgs),
    /// Authorized keys of service accounts (`yc iam key`).
    Key(KeyArgs),
    /// OIDC federations and federated credentials (`yc iam workload-identity`).
    WorkloadIdentity(WorkloadIdentityArgs),
    /// Print an IAM token of the key file's service account, for `Authorization: Bearer`
    /// (`yc iam create-token`). The token is a credential: keep it out of logs.
    CreateToken(CreateTokenArgs),
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub struct ServiceAccountArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ServiceAccountCommand,
}

#[derive(Debug, Subcommand)]
enum ServiceAccountCommand {
    /// Create a service account.
    Create {
        /// Its name: a lowercase letter, then lowercase letters, digits or hyphens.
        #[arg(long)]
        name: String,
        /// The folder [default: the key file's service account's folder].
        #[arg(long, value_name = "ID")]
        folder_id: Option<String>,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the service accounts of a folder.
    List {
        /// The folder [default: the key file's service account's folder].
        #[arg(long, value_name = "ID")]
        folder_id: Option<String>,
    },
    /// Show a service account, by id or by --name.
    #[command(group = ArgGroup::new("which").required(true).args(["id", "name"]))]
    Get {
        /// The service account's id.
        id: Option<String>,
        /// Find it by name instead.
        #[arg(long)]
        name: Option<String>,
        /// With --name: the folder [default: the key file's service account's folder].
        #[arg(long, value_name = "ID", requires = "name")]
        folder_id: Option<String>,
    },
    /// Rename a service account or change its description.
    #[command(group = ArgGroup::new("change").required(true).multiple(true).args(["new_name", "description"]))]
    Update {
        /// The resource's id.
        id: String,
        /// The new name.
        #[arg(long)]
        new_name: Option<String>,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a service account (its keys, credentials and bindings go with it).
    Delete {
        /// The resource's id.
        id: String,
    },
    /// Grant a role on a service account.
    AddAccessBinding(BindingArgs),
    /// Revoke a role on a service account.
    RemoveAccessBinding(BindingArgs),
    /// List the access bindings of a service account.
    ListAccessBindings {
        /// The resource's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an authorized key and write it as a Yandex key file (mode 0600); prints the
    /// key's metadata, never its private key.
    Create {
        /// The key's service account [default: the key file's].
        #[arg(long, value_name = "ID")]
        service_account_id: Option<String>,
        /// The RSA key size.
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Rsa2048)]
        algorithm: KeyAlgorithm,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
        /// Where to write the key file.
        #[arg(short = 'o', long, value_name = "PATH")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// List the authorized keys of a service account.
    List {
        /// The service account [default: the key file's].
        #[arg(long, value_name = "ID")]
        service_account_id: Option<String>,
    },
    /// Delete an authorized key.
    Delete {
        /// The resource's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct WorkloadIdentityArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: WorkloadIdentityCommand,
}

#[derive(Debug, Subcommand)]
enum WorkloadIdentityCommand {
    /// OIDC federations.
    Oidc {
        #[command(subcommand)]
        command: OidcCommand,
    },
    /// Federated credentials: an external subject of a federation acting as a service account.
    FederatedCredential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OidcCommand {
    /// OIDC federations: the issuers whose tokens the exchange trusts.
    Federation {
        #[command(subcommand)]
        command: FederationCommand,
    },
}

#[derive(Debug, Subcommand)]
enum FederationCommand {
    /// Create a federation.
    Create {
        /// Its name: a lowercase letter, then lowercase letters, digits or hyphens.
        #[arg(long)]
        name: String,
        /// The folder [default: the key file's service account's folder].
        #[arg(long, value_name = "ID")]
        folder_id: Option<String>,
        /// The issuer, exactly as in the tokens' `iss`.
        #[arg(long, value_name = "URL")]
        issuer: String,
        /// The accepted `aud` values.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        audiences: Vec<String>,
        /// Where the issuer's keys (JWKS) are.
        #[arg(long, value_name = "URL")]
        jwks_url: String,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
        /// Create it disabled: its tokens are refused until it is enabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the federations of a folder.
    List {
        /// The folder [default: the key file's service account's folder].
        #[arg(long, value_name = "ID")]
        folder_id: Option<String>,
    },
    /// Show a federation.
    Get {
        /// The resource's id.
        id: String,
    },
    /// Change a federation (the issuer cannot change).
    #[command(group = ArgGroup::new("change").required(true).multiple(true)
        .args(["new_name", "description", "audiences", "jwks_url", "disable", "enable"]))]
    Update {
        /// The resource's id.
        id: String,
        /// The new name.
        #[arg(long)]
        new_name: Option<String>,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
        /// Replace the accepted `aud` values.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        audiences: Option<Vec<String>>,
        /// Where the issuer's keys (JWKS) are.
        #[arg(long, value_name = "URL")]
        jwks_url: Option<String>,
        /// Disable it: its tokens are refused.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable it again.
        #[arg(long)]
        enable: bool,
    },
    /// Delete a federation (its credentials and bindings go with it).
    Delete {
        /// The resource's id.
        id: String,
    },
    /// Grant a role on a federation.
    AddAccessBinding(BindingArgs),
    /// Revoke a role on a federation.
    RemoveAccessBinding(BindingArgs),
    /// List the access bindings of a federation.
    ListAccessBindings {
        /// The resource's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CredentialCommand {
    /// Let an external subject of a federation act as a service account.
    Create {
        /// The service account the subject acts as.
        #[arg(long, value_name = "ID")]
        service_account_id: String,
        /// The federation whose tokens the subject presents.
        #[arg(long, value_name = "ID")]
        federation_id: String,
        /// The token's `sub`, compared exactly.
        #[arg(long, value_name = "SUBJECT")]
        external_subject_id: String,
    },
    /// List the federated credentials of a service account.
    List {
        /// The service account.
        #[arg(long, value_name = "ID")]
        service_account_id: String,
    },
    /// Show a federated credential.
    Get {
        /// The resource's id.
        id: String,
    },
    /// Delete a federated credential: its subject's tokens are refused from then on.
    Delete {
        /// The resource's id.
        id: String,
    },
}

/// `wif-gateway resource-manager …` (`yc resource-manager`).
#[derive(Debug, Args)]
pub struct ResourceManagerArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ResourceManagerCommand,
}

#[derive(Debug, Subcommand)]
enum ResourceManagerCommand {
    /// Folders.
    Folder {
        #[command(subcommand)]
        command: FolderCommand,
    },
}

#[derive(Debug, Subcommand)]
enum FolderCommand {
    /// List the folders of a cloud.
    List {
        /// The cloud.
        #[arg(long, value_name = "ID")]
        cloud_id: String,
    },
    /// Show a folder.
    Get {
        /// The resource's id.
        id: String,
    },
    /// Grant a role on a folder (and so on everything in it).
    AddAccessBinding(BindingArgs),
    /// Revoke a role on a folder.
    RemoveAccessBinding(BindingArgs),
    /// List the access bindings of a folder.
    ListAccessBindings {
        /// The resource's id.
        id: String,
    },
}

/// Who gets or loses which role on the resource `ID`.
#[derive(Debug, Clone, Args)]
#[command(group = ArgGroup::new("who").required(true).args(["service_account_id", "subject"]))]
struct BindingArgs {
    /// The resource's id.
    id: String,
    /// The role, e.g. `viewer` or `iam.workloadIdentityFederations.user`.
    #[arg(long)]
    role: String,
    /// The subject is this service account.
    #[arg(long, value_name = "ID")]
    service_account_id: Option<String>,
    /// The subject as TYPE:ID: `serviceAccount:aje…`, `system:allAuthenticatedUsers`.
    #[arg(long, value_name = "TYPE:ID")]
    subject: Option<String>,
}

impl BindingArgs {
    /// The `accessBinding` JSON.
    fn binding(&self) -> Result<Value, CliError> {
        let (kind, id) = match (&self.service_account_id, &self.subject) {
            (Some(id), _) => ("serviceAccount", id.as_str()),
            (None, Some(subject)) => subject
                .split_once(':')
                .filter(|(kind, id)| !kind.is_empty() && !id.is_empty())
                .ok_or_else(|| {
                    CliError::Local(format!(
                        "--subject {subject:?}: give TYPE:ID, e.g. serviceAccount:aje… or system:allAuthenticatedUsers"
                    ))
                })?,
            (None, None) => {
                return Err(CliError::Local(
                    "give --service-account-id ID or --subject TYPE:ID".into(),
                ));
            }
        };
        Ok(json!({"roleId": self.role, "subject": {"id": id, "type": kind}}))
    }
}

/// Runs an `iam` API command; prints its result or `ERROR: …`.
pub fn run_iam(command: IamCommand) -> ExitCode {
    let connection = match &command {
        IamCommand::ServiceAccount(a) => a.connection.clone(),
        IamCommand::Key(a) => a.connection.clone(),
        IamCommand::WorkloadIdentity(a) => a.connection.clone(),
        IamCommand::CreateToken(a) => a.connection.clone(),
    };
    block_on(connection, move |session, out| async move {
        match command {
            IamCommand::ServiceAccount(a) => service_account(&session, &out, a.command).await,
            IamCommand::Key(a) => key(&session, &out, a.command).await,
            IamCommand::WorkloadIdentity(a) => match a.command {
                WorkloadIdentityCommand::Oidc {
                    command: OidcCommand::Federation { command },
                } => federation(&session, &out, command).await,
                WorkloadIdentityCommand::FederatedCredential { command } => {
                    credential(&session, &out, command).await
                }
            },
            IamCommand::CreateToken(_) => {
                println!("{}", session.token());
                Ok(())
            }
        }
    })
}

/// Runs a `resource-manager` command; prints its result or `ERROR: …`.
pub fn run_resource_manager(args: ResourceManagerArgs) -> ExitCode {
    block_on(args.connection, move |session, out| async move {
        match args.command {
            ResourceManagerCommand::Folder { command } => folder(&session, &out, command).await,
        }
    })
}

/// Opens a session and runs `work` on a current-thread runtime.
fn block_on<F, Fut>(connection: Connection, work: F) -> ExitCode
where
    F: FnOnce(Session, Output) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::Local(format!("starting the runtime: {e}"))),
    };
    let out = Output {
        format: connection.format,
    };
    let result = runtime.block_on(async move {
        let session = Session::open(connection.key_file.as_ref(), &connection.endpoint).await?;
        work(session, out).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("ERROR: {e}");
    ExitCode::from(1)
}

/// A table column: its header and how a cell is read from a resource.
type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// Prints results in the chosen format.
struct Output {
    format: Format,
}

impl Output {
    /// One resource.
    fn one(&self, value: &Value) {
        match self.format {
            Format::Text => print!("{}", output::resource(value)),
            Format::Json => print!("{}", output::json(value)),
        }
    }

    /// A mutation's response: nothing in text for `google.protobuf.Empty`, as `yc` prints
    /// nothing after a delete.
    fn done(&self, response: &Value) {
        let empty = response
            .as_object()
            .is_none_or(|m| m.keys().all(|k| k == "@type"));
        if !(empty && self.format == Format::Text) {
            self.one(response);
        }
    }

    /// A list: `columns` are (header, field) pairs.
    fn many(&self, items: &[Value], columns: &[Column<'_>]) {
        match self.format {
            Format::Text => {
                let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
                let mut table = Table::new(&headers);
                for item in items {
                    table.row(columns.iter().map(|(_, f)| f(item)).collect());
                }
                print!("{}", table.render());
            }
            Format::Json => print!("{}", output::json(&Value::Array(items.to_vec()))),
        }
    }
}

/// A column showing a field as it is.
fn col(name: &'static str) -> impl Fn(&Value) -> String {
    move |v| field(v, name)
}

const SERVICE_ACCOUNTS: &str = "/iam/v1/serviceAccounts";
const FEDERATIONS: &str = "/iam/v1/workload/oidc/federations";
const CREDENTIALS: &str = "/iam/v1/workload/federatedCredentials";
const KEYS: &str = "/iam/v1/keys";
const FOLDERS: &str = "/resource-manager/v1/folders";

fn path(collection: &str, id: &str) -> String {
    format!("{collection}/{}", segment(id))
}

async fn folder_or_default(session: &Session, folder: Option<String>) -> Result<String, CliError> {
    match folder {
        Some(folder) => Ok(folder),
        None => session.default_folder().await,
    }
}

/// A body with the fields that are set and the `updateMask` naming them.
fn update_body(fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut body = Map::new();
    let mut mask = Vec::new();
    for (name, value) in fields {
        if let Some(value) = value {
            mask.push(name.to_owned());
            body.insert(name.to_owned(), value);
        }
    }
    body.insert("updateMask".into(), Value::String(mask.join(",")));
    Value::Object(body)
}

async fn change_binding(
    session: &Session,
    out: &Output,
    resource: &str,
    action: &str,
    args: &BindingArgs,
) -> Result<(), CliError> {
    let body =
        json!({"accessBindingDeltas": [{"action": action, "accessBinding": args.binding()?}]});
    let response = session
        .mutate(
            Method::POST,
            &format!("{resource}:updateAccessBindings"),
            Some(body),
        )
        .await?;
    out.done(&response);
    Ok(())
}

async fn list_bindings(session: &Session, out: &Output, resource: &str) -> Result<(), CliError> {
    let items = session
        .list(
            &format!("{resource}:listAccessBindings"),
            &[],
            "accessBindings",
        )
        .await?;
    let subject = |key: &'static str| move |v: &Value| field(&v["subject"], key);
    out.many(
        &items,
        &[
            ("ROLE ID", &col("roleId")),
            ("SUBJECT TYPE", &subject("type")),
            ("SUBJECT ID", &subject("id")),
        ],
    );
    Ok(())
}

async fn service_account(
    session: &Session,
    out: &Output,
    command: ServiceAccountCommand,
) -> Result<(), CliError> {
    match command {
        ServiceAccountCommand::Create {
            name,
            folder_id,
            description,
        } => {
            let folder = folder_or_default(session, folder_id).await?;
            let body = json!({"folderId": folder, "name": name, "description": description});
            out.done(
                &session
                    .mutate(Method::POST, SERVICE_ACCOUNTS, Some(body))
                    .await?,
            );
        }
        ServiceAccountCommand::List { folder_id } => {
            let folder = folder_or_default(session, folder_id).await?;
            let items = session
                .list(
                    SERVICE_ACCOUNTS,
                    &[("folderId", &folder)],
                    "serviceAccounts",
                )
                .await?;
            out.many(
                &items,
                &[
                    ("ID", &col("id")),
                    ("NAME", &col("name")),
                    ("DESCRIPTION", &col("description")),
                ],
            );
        }
        ServiceAccountCommand::Get {
            id,
            name,
            folder_id,
        } => {
            let account = match (id, name) {
                (Some(id), _) => session.get(&path(SERVICE_ACCOUNTS, &id), &[]).await?,
                (None, Some(name)) => {
                    let folder = folder_or_default(session, folder_id).await?;
                    let filter = format!("name={}", Value::String(name.clone()));
                    session
                        .list(
                            SERVICE_ACCOUNTS,
                            &[("folderId", &folder), ("filter", &filter)],
                            "serviceAccounts",
                        )
                        .await?
                        .into_iter()
                        .find(|a| a["name"] == name.as_str())
                        .ok_or_else(|| CliError::Rpc {
                            code: 5,
                            message: format!(
                                "service account with name \"{name}\" not found in folder {folder}"
                            ),
                        })?
                }
                (None, None) => return Err(CliError::Local("give ID or --name".into())),
            };
            out.one(&account);
        }
        ServiceAccountCommand::Update {
            id,
            new_name,
            description,
        } => {
            let body = update_body(vec![
                ("name", new_name.map(Value::String)),
                ("description", description.map(Value::String)),
            ]);
            out.done(
                &session
                    .mutate(Method::PATCH, &path(SERVICE_ACCOUNTS, &id), Some(body))
                    .await?,
            );
        }
        ServiceAccountCommand::Delete { id } => {
            out.done(
                &session
                    .mutate(Method::DELETE, &path(SERVICE_ACCOUNTS, &id), None)
                    .await?,
            );
        }
        ServiceAccountCommand::AddAccessBinding(args) => {
            change_binding(
                session,
                out,
                &path(SERVICE_ACCOUNTS, &args.id),
                "ADD",
                &args,
            )
            .await?;
        }
        ServiceAccountCommand::RemoveAccessBinding(args) => {
            let resource = path(SERVICE_ACCOUNTS, &args.id);
            change_binding(session, out, &resource, "REMOVE", &args).await?;
        }
        ServiceAccountCommand::ListAccessBindings { id } => {
            list_bindings(session, out, &path(SERVICE_ACCOUNTS, &id)).await?;
        }
    }
    Ok(())
}

async fn key(session: &Session, out: &Output, command: KeyCommand) -> Result<(), CliError> {
    match command {
        KeyCommand::Create {
            service_account_id,
            algorithm,
            description,
            output,
            force,
        } => {
            if output.exists() && !force {
                return Err(CliError::Local(format!(
                    "{} exists; pass --force to overwrite it",
                    output.display()
                )));
            }
            let mut body = json!({
                "description": description,
                "format": "PEM_FILE",
                "keyAlgorithm": match algorithm {
                    KeyAlgorithm::Rsa2048 => "RSA_2048",
                    KeyAlgorithm::Rsa4096 => "RSA_4096",
                },
            });
            if let Some(account) = service_account_id {
                body["serviceAccountId"] = Value::String(account);
            }
            let answer = session.send(Method::POST, KEYS, &[], Some(body)).await?;
            let key = &answer["key"];
            let text = |name: &str| key[name].as_str().unwrap_or_default();
            let private_key = answer["privateKey"].as_str().unwrap_or_default();
            if text("id").is_empty() || private_key.is_empty() {
                return Err(CliError::Transport(format!(
                    "{KEYS} answered without a key id or private key"
                )));
            }
            let file = crate::iam::keys::KeyFile {
                id: text("id"),
                service_account_id: text("serviceAccountId"),
                created_at: text("createdAt"),
                key_algorithm: text("keyAlgorithm"),
                public_key: text("publicKey"),
            };
            crate::files::write_private(&output, &file.text(private_key))
                .map_err(|e| CliError::Local(crate::report::error_chain(&e)))?;
            let mut shown = key.clone();
            if let Some(map) = shown.as_object_mut() {
                map.remove("publicKey");
            }
            out.one(&shown);
        }
        KeyCommand::List { service_account_id } => {
            let query: Vec<(&str, &str)> = service_account_id
                .as_deref()
                .map(|id| ("serviceAccountId", id))
                .into_iter()
                .collect();
            let items = session.list(KEYS, &query, "keys").await?;
            out.many(
                &items,
                &[
                    ("ID", &col("id")),
                    ("ALGORITHM", &col("keyAlgorithm")),
                    ("DESCRIPTION", &col("description")),
                    ("CREATED AT", &col("createdAt")),
                ],
            );
        }
        KeyCommand::Delete { id } => {
            out.done(
                &session
                    .mutate(Method::DELETE, &path(KEYS, &id), None)
                    .await?,
            );
        }
    }
    Ok(())
}

async fn federation(
    session: &Session,
    out: &Output,
    command: FederationCommand,
) -> Result<(), CliError> {
    match command {
        FederationCommand::Create {
            name,
            folder_id,
            issuer,
            audiences,
            jwks_url,
            description,
            disabled,
        } => {
            let folder = folder_or_default(session, folder_id).await?;
            let body = json!({
                "folderId": folder,
                "name": name,
                "description": description,
                "disabled": disabled,
                "issuer": issuer,
                "audiences": audiences,
                "jwksUrl": jwks_url,
            });
            out.done(
                &session
                    .mutate(Method::POST, FEDERATIONS, Some(body))
                    .await?,
            );
        }
        FederationCommand::List { folder_id } => {
            let folder = folder_or_default(session, folder_id).await?;
            let items = session
                .list(FEDERATIONS, &[("folderId", &folder)], "federations")
                .await?;
            out.many(
                &items,
                &[
                    ("ID", &col("id")),
                    ("NAME", &col("name")),
                    ("ISSUER", &col("issuer")),
                    ("AUDIENCES", &col("audiences")),
                    ("ENABLED", &col("enabled")),
                ],
            );
        }
        FederationCommand::Get { id } => out.one(&session.get(&path(FEDERATIONS, &id), &[]).await?),
        FederationCommand::Update {
            id,
            new_name,
            description,
            audiences,
            jwks_url,
            disable,
            enable,
        } => {
            let disabled = (disable || enable).then_some(Value::Bool(disable));
            let body = update_body(vec![
                ("name", new_name.map(Value::String)),
                ("description", description.map(Value::String)),
                ("audiences", audiences.map(|a| json!(a))),
                ("jwksUrl", jwks_url.map(Value::String)),
                ("disabled", disabled),
            ]);
            out.done(
                &session
                    .mutate(Method::PATCH, &path(FEDERATIONS, &id), Some(body))
                    .await?,
            );
        }
        FederationCommand::Delete { id } => {
            out.done(
                &session
                    .mutate(Method::DELETE, &path(FEDERATIONS, &id), None)
                    .await?,
            );
        }
        FederationCommand::AddAccessBinding(args) => {
            change_binding(session, out, &path(FEDERATIONS, &args.id), "ADD", &args).await?;
        }
        FederationCommand::RemoveAccessBinding(args) => {
            change_binding(session, out, &path(FEDERATIONS, &args.id), "REMOVE", &args).await?;
        }
        FederationCommand::ListAccessBindings { id } => {
            list_bindings(session, out, &path(FEDERATIONS, &id)).await?;
        }
    }
    Ok(())
}

async fn credential(
    session: &Session,
    out: &Output,
    command: CredentialCommand,
) -> Result<(), CliError> {
    match command {
        CredentialCommand::Create {
            service_account_id,
            federation_id,
            external_subject_id,
        } => {
            let body = json!({
                "serviceAccountId": service_account_id,
                "federationId": federation_id,
                "externalSubjectId": external_subject_id,
            });
            out.done(
                &session
                    .mutate(Method::POST, CREDENTIALS, Some(body))
                    .await?,
            );
        }
        CredentialCommand::List { service_account_id } => {
            let items = session
                .list(
                    CREDENTIALS,
                    &[("serviceAccountId", &service_account_id)],
                    "federatedCredentials",
                )
                .await?;
            out.many(
                &items,
                &[
                    ("ID", &col("id")),
                    ("FEDERATION ID", &col("federationId")),
                    ("EXTERNAL SUBJECT ID", &col("externalSubjectId")),
                ],
            );
        }
        CredentialCommand::Get { id } => out.one(&session.get(&path(CREDENTIALS, &id), &[]).await?),
        CredentialCommand::Delete { id } => {
            out.done(
                &session
                    .mutate(Method::DELETE, &path(CREDENTIALS, &id), None)
                    .await?,
            );
        }
    }
    Ok(())
}

async fn folder(session: &Session, out: &Output, command: FolderCommand) -> Result<(), CliError> {
    match command {
        FolderCommand::List { cloud_id } => {
            let items = session
                .list(FOLDERS, &[("cloudId", &cloud_id)], "folders")
                .await?;
            out.many(
                &items,
                &[
                    ("ID", &col("id")),
                    ("NAME", &col("name")),
                    ("DESCRIPTION", &col("description")),
                ],
            );
        }
        FolderCommand::Get { id } => out.one(&session.get(&path(FOLDERS, &id), &[]).await?),
        FolderCommand::AddAccessBinding(args) => {
            change_binding(session, out, &path(FOLDERS, &args.id), "ADD", &args).await?;
        }
        FolderCommand::RemoveAccessBinding(args) => {
            change_binding(session, out, &path(FOLDERS, &args.id), "REMOVE", &args).await?;
        }
        FolderCommand::ListAccessBindings { id } => {
            list_bindings(session, out, &path(FOLDERS, &id)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(service_account_id: Option<&str>, subject: Option<&str>) -> BindingArgs {
        BindingArgs {
            id: "b1g".into(),
            role: "viewer".into(),
            service_account_id: service_account_id.map(str::to_owned),
            subject: subject.map(str::to_owned),
        }
    }

    #[test]
    fn binding_subjects() {
        let cases = [
            (
                "service account",
                binding(Some("aje1"), None),
                Some(("aje1", "serviceAccount")),
            ),
            (
                "system subject",
                binding(None, Some("system:allAuthenticatedUsers")),
                Some(("allAuthenticatedUsers", "system")),
            ),
            ("no type", binding(None, Some(":x")), None),
            ("no colon", binding(None, Some("aje1")), None),
            ("neither", binding(None, None), None),
        ];
        for (name, args, expected) in cases {
            match (args.binding(), expected) {
                (Ok(b), Some((id, kind))) => assert_eq!(
                    b,
                    json!({"roleId": "viewer", "subject": {"id": id, "type": kind}}),
                    "{name}"
                ),
                (Err(_), None) => {}
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[derive(clap::Parser)]
    struct Iam {
        #[command(subcommand)]
        command: IamCommand,
    }

    #[derive(clap::Parser)]
    struct ResourceManager {
        #[command(flatten)]
        args: ResourceManagerArgs,
    }

    #[test]
    fn the_command_definitions_are_consistent_and_parse_yc_style_lines() {
        use clap::{CommandFactory as _, Parser as _};
        Iam::command().debug_assert();
        ResourceManager::command().debug_assert();
        let parsed = Iam::try_parse_from([
            "iam",
            "workload-identity",
            "oidc",
            "federation",
            "create",
            "--name",
            "ci",
            "--issuer",
            "https://gitlab.example.com",
            "--jwks-url",
            "https://gitlab.example.com/jwks",
            "--audiences",
            "a,b",
            "--format",
            "json",
            "--endpoint",
            "http://gw:8080",
        ])
        .unwrap();
        let IamCommand::WorkloadIdentity(args) = parsed.command else {
            panic!("workload-identity");
        };
        assert_eq!(args.connection.format, Format::Json);
        assert_eq!(args.connection.endpoint, "http://gw:8080");
        let WorkloadIdentityCommand::Oidc {
            command:
                OidcCommand::Federation {
                    command: FederationCommand::Create { audiences, .. },
                },
        } = args.command
        else {
            panic!("federation create");
        };
        assert_eq!(audiences, ["a", "b"]);
        for refused in [
            &["iam", "service-account", "get"][..],
            &["iam", "service-account", "update", "aje1"],
            &[
                "iam",
                "service-account",
                "add-access-binding",
                "aje1",
                "--role",
                "viewer",
            ],
            &["iam", "key", "create", "--service-account-id", "aje1"],
        ] {
            assert!(Iam::try_parse_from(refused).is_err(), "{refused:?}");
        }
        fn undocumented(command: &clap::Command, path: &str, out: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    out.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut missing = Vec::new();
        undocumented(&Iam::command(), "iam", &mut missing);
        undocumented(
            &ResourceManager::command(),
            "resource-manager",
            &mut missing,
        );
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
        assert!(
            ResourceManager::try_parse_from([
                "rm",
                "folder",
                "list-access-bindings",
                "b1g",
                "--format",
                "text",
            ])
            .is_ok()
        );
    }

    #[test]
    fn update_bodies_mask_the_fields_given() {
        assert_eq!(
            update_body(vec![
                ("name", Some(json!("n"))),
                ("description", None),
                ("disabled", Some(json!(true))),
            ]),
            json!({"name": "n", "disabled": true, "updateMask": "name,disabled"})
        );
    }
}
