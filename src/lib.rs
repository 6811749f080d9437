//! # wif-gateway
//!
//! A self-hosted Workload Identity Federation gateway. A workload that holds a JWT from an OIDC
//! issuer (a GitLab CI job, a Kubernetes pod, a GitHub Actions run) posts it to
//! `POST /oauth/token` (RFC 8693 token exchange, wire-compatible with Yandex Cloud) and receives a
//! short-lived access token of the service account that a federated credential names.
//!
//! ## Crate map
//!
//! | module | job |
//! |---|---|
//! | [`exchange`] | the exchange path: form → unverified JWT → trust decision → gates → mint; refusals and their reasons |
//! | [`exchange::request`], [`exchange::jwt`] | the request form and the caller JWT, read without trusting them |
//! | [`exchange::authorize`] | federations, signature, claims, federated credential: the trust decision |
//! | [`exchange::issuer_keys`], [`exchange::jwks`] | issuers' key sets: parsing and verification; fetching and caching |
//! | [`exchange::directory`] | the immutable, indexed snapshot of federations, service accounts and credentials |
//! | [`signing`] | the gateway's own signing keys and the RFC 9068 access tokens it mints |
//! | [`limits`] | rate limits per client IP and per verified subject (the exchange's gate) |
//! | [`config`] | TOML files → settings and a directory (`check-config` runs the same code) |
//! | [`app`] | the running gateway's shared state, live reload and upkeep |
//! | [`http`] | routes, RFC 6749 error responses, the accept loop with its timeouts, plain and TLS |
//! | [`grpc`] | the IAM API over gRPC with Yandex's protos (`proto/`), on the same listeners as REST: thin adapters over [`iam`] |
//! | [`tls`], [`tls::dev_ca`] | the TLS listener's certificate and key (swapped on reload), rustls settings; the development CA |
//! | [`audit`], [`telemetry`] | the audit log and the Prometheus metrics |
//! | [`iam`], [`iam::store`] | IAM resources (clouds, folders, service accounts, federations, credentials, keys, bindings, operations) in SQLite or PostgreSQL, with a change log |
//! | [`iam::roles`], [`iam::authz`] | the role graph as data (permissions, roles, what each method needs); the in-memory authorization index: check, authorize, may_grant |
//! | [`client`] | `wif-gateway exchange`: exchanges a caller JWT with retries, prints or refreshes the token |
//! | [`cli`] | `wif-gateway iam …` and `resource-manager …`: the IAM REST API's client, with `yc`'s command names and output |
//! | [`dev_issuer`] | an OIDC issuer for local round trips; exists only when the config enables it |
//! | [`files`], [`report`], [`time`] | private file writes; errors shown with their sources; the one place that reads the wall clock |
//!
//! Dependencies point one way: `http` → `app` → `config` → `exchange`, `signing`, `limits`;
//! nothing in `exchange` imports HTTP types or the modules above it, and [`exchange::jwks`] does
//! its I/O behind the [`exchange::KeyProvider`] trait. The design record is `docs/design.md`.

/// Every binary, test and example of the package allocates with mimalloc
/// (`docs/performance.md#start-up-at-a-million-records`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod dev_issuer;
pub mod exchange;
pub mod files;
pub mod grpc;
pub mod http;
pub mod iam;
pub mod json;
pub mod limits;
pub mod report;
pub mod signing;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod tls;

pub use app::AppState;
pub use http::{Listeners, run};
