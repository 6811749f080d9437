//! The messages, servers and clients generated from `proto/` by `build.rs`, in a module tree
//! that mirrors the proto packages (`yandex::cloud::iam::v1::KeyService`, …).

#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

include!(concat!(env!("OUT_DIR"), "/yandex_cloud.rs"));

/// The encoded `FileDescriptorSet` of `proto/`: which services and methods are served.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/yandex_cloud.bin"));
