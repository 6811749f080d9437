//! Test support: a real OIDC issuer ([`issuer`]) and the real gateway ([`gateway`]).

pub mod gateway;
pub mod issuer;

pub use gateway::{Gateway, Options, account, binding, federation};
pub use issuer::{Behavior, KeyKind, TestIssuer, TestKey, claims, now};
