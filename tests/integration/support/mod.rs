//! Test support: a real OIDC issuer ([`issuer`]), an HTTPS front for it ([`tls`]), the real
//! gateway in process ([`gateway`]) and the real binary ([`binary`]). Keys, claims and tokens come from the library's test kit
//! (`wif_gateway::testkit`).

pub mod binary;
pub mod gateway;
pub mod issuer;
pub mod tls;

pub use gateway::{Gateway, Options, account, binding, federation};
pub use issuer::{Behavior, TestIssuer};
pub use wif_gateway::testkit::{KeyKind, TestKey, claims};
pub use wif_gateway::time::now_unix as now;
