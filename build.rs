//! Compiles `proto/` (the Yandex Cloud API subset the gateway serves over gRPC) into Rust in
//! `OUT_DIR`: protox parses the files, so no `protoc` binary is needed, and tonic-prost-build
//! generates the messages, the servers and the clients (the tests call the gateway with them).
//! The descriptor set is kept too (`yandex_cloud.bin`): the gateway reads the served methods
//! from it.

use std::path::PathBuf;

/// The files whose services the gateway serves; their imports come along.
const SERVICES: &[&str] = &[
    "yandex/cloud/endpoint/api_endpoint_service.proto",
    "yandex/cloud/iam/v1/awscompatibility/access_key_service.proto",
    "yandex/cloud/iam/v1/api_key_service.proto",
    "yandex/cloud/iam/v1/iam_token_service.proto",
    "yandex/cloud/iam/v1/key_service.proto",
    "yandex/cloud/iam/v1/role_service.proto",
    "yandex/cloud/iam/v1/service_account_service.proto",
    "yandex/cloud/iam/v1/workload/federated_credential_service.proto",
    "yandex/cloud/iam/v1/workload/oidc/federation_service.proto",
    "yandex/cloud/operation/operation_service.proto",
    "yandex/cloud/resourcemanager/v1/cloud_service.proto",
    "yandex/cloud/resourcemanager/v1/folder_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true);
    compiler.open_files(SERVICES)?;
    let descriptors = compiler.file_descriptor_set();
    std::fs::write(
        out.join("yandex_cloud.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` for every message, with the type URL prefix `google.protobuf.Any` uses.
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    config.btree_map(["."]);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .include_file("yandex_cloud.rs")
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
