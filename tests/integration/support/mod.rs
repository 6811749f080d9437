//! Test support: a real OIDC issuer ([`issuer`]), an HTTPS front for it ([`tls`]) and the real
//! gateway ([`gateway`]).

pub mod gateway;
pub mod issuer;
pub mod tls;

pub use gateway::{Gateway, Options, account, binding, federation};
pub use issuer::{Behavior, KeyKind, TestIssuer, TestKey, claims, now};
