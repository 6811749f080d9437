//! # wif-gateway
//!
//! A self-hosted Workload Identity Federation gateway. A workload that holds a JWT from an OIDC
//! issuer (a GitLab CI job, a Kubernetes pod, a GitHub Actions run) posts it to
//! `POST /oauth/token` (RFC 8693 token exchange, wire-compatible with Yandex Cloud) and receives a
//! short-lived access token of the service account that a federated credential names.
//!
//! ## Crate map
//!
//! | module | role |
//! |---|---|
//! | [`request`] | parses the form body of a token-exchange request into a [`request::TokenRequest`] |
//! | [`jwt`] | reads a compact JWS without trusting it: size caps, header hygiene, typed claims |
//! | [`keys`] | JWKS parsing into verification keys parsed once; signature verification |
//! | [`directory`] | the immutable, pre-indexed snapshot of federations, service accounts and credentials |
//! | [`config`] | TOML files → validated [`directory::Directory`] and settings (`check-config` runs the same code) |
//! | [`exchange`] | the pure exchange: (request, snapshot, key provider, clock) → grant + minted token |
//! | [`signing`] | the gateway's own signing keys, RFC 7638 thumbprints, minting of RFC 9068 access tokens |
//! | [`jwks`] | fetching and caching issuers' key sets (single flight, cooldown, stale serving) |
//! | [`dev_issuer`] | an OIDC issuer for local round trips; exists only when the config enables it |
//! | [`http`] | everything HTTP: routes, RFC 6749 error responses, the accept loop with timeouts |
//! | [`time`] | the one place that reads the wall clock, and RFC 3339 formatting for messages |
//! | [`reload`] | live reload: SIGHUP and file watching, validated whole and swapped, or refused |
//! | [`audit`] | the audit log: one JSON line per exchange, reload and signing-key change |
//! | [`telemetry`] | Prometheus metric names and the process-wide recorder |
//! | [`client`] | `wif-gateway exchange`: reads a caller JWT, exchanges it with retries, prints or refreshes the access token |
//!
//! The exchange logic ([`exchange`], [`jwt`], [`keys`], [`directory`]) knows nothing of HTTP;
//! [`http`] translates, and [`jwks`] does its I/O behind the [`exchange::KeyProvider`] trait.

pub mod audit;
pub mod client;
pub mod config;
pub mod dev_issuer;
pub mod directory;
pub mod exchange;
pub mod http;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod reload;
pub mod request;
pub mod signing;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;

pub use http::{AppState, run};
