//! Integration tests: one test binary (linking is slow on small machines), modules by subject.
//! Every test starts the real gateway on 127.0.0.1:0 and, where it needs one, a real test OIDC
//! issuer on loopback, and talks HTTP to both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod cli;
mod cli_iam;
mod client;
mod deploy;
mod devsetup;
mod docs;
mod exchange;
mod grpc;
mod hostile;
mod iam_access_keys;
mod iam_api_keys;
mod iam_authorize;
mod iam_configured;
mod iam_federations;
mod iam_hierarchy;
mod iam_keys;
mod iam_tokens;
mod idempotency;
mod jwks;
mod layout;
mod lifecycle;
mod lockbox;
mod operate;
mod overload;
mod propagation;
mod rejection;
mod replicas;
mod resource;
mod revocation;
mod store;
mod tls;
mod tls_listener;
