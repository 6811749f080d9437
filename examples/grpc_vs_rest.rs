//! One Get over gRPC and over REST, on the same listener, same process: the gateway starts
//! in-process with a SQLite store in a temporary directory, then `FolderService.Get` of the
//! bootstrap folder is called `N` times (default 2000) one after another over each transport,
//! interleaved in rounds of 100, on one connection each (HTTP/2 for gRPC, HTTP/1.1 keep-alive
//! for REST), and the latencies' median and p99 are printed with their ratio.
//!
//!   cargo run --release --example grpc_vs_rest
//!
//! Both calls authenticate the same IAM token, authorize, read the folder from the store and
//! write the same metrics; what differs is the transport and the message encoding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::GetFolderRequest;
use wif_gateway::grpc::proto::yandex::cloud::resourcemanager::v1::folder_service_client::FolderServiceClient;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = format!(
        "[server]\npublic_url = {url:?}\nwatch_config = false\n\n[signing]\nkey_file = \"signing.pem\"\ngenerate_if_missing = true\n\n[audit]\noutput = \"off\"\n\n[store]\nurl = \"sqlite://iam.db\"\n\n[iam]\nbootstrap_key_file = \"admin-key.json\"\n"
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let config = wif_gateway::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let state = wif_gateway::AppState::start(config).await.unwrap();
    tokio::spawn(wif_gateway::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));

    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("admin-key.json")).unwrap())
            .unwrap();
    let admin = key["service_account_id"].as_str().unwrap().to_owned();
    let folder = state
        .store()
        .unwrap()
        .get_service_account(&admin)
        .await
        .unwrap()
        .folder_id;
    let token = state
        .snapshot()
        .minter
        .mint_for_key(&admin, "bench", wif_gateway::time::now_unix())
        .unwrap()
        .access_token;

    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = FolderServiceClient::new(channel);
    let rest = reqwest::Client::new();
    let bearer = format!("Bearer {token}");
    let rest_url = format!("{url}/resource-manager/v1/folders/{folder}");

    let grpc_get = async |grpc: &mut FolderServiceClient<tonic::transport::Channel>| {
        let mut request = tonic::Request::new(GetFolderRequest {
            folder_id: folder.clone(),
        });
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        let started = Instant::now();
        let folder = grpc.get(request).await.unwrap().into_inner();
        assert!(!folder.id.is_empty());
        started.elapsed()
    };
    let rest_get = async || {
        let started = Instant::now();
        let reply = rest
            .get(&rest_url)
            .header("Authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_success());
        let _ = reply.bytes().await.unwrap();
        started.elapsed()
    };
    // Warm both connections and caches.
    for _ in 0..100 {
        grpc_get(&mut grpc).await;
        rest_get().await;
    }
    let (mut over_grpc, mut over_rest) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n.div_ceil(100) {
        for _ in 0..100 {
            over_grpc.push(grpc_get(&mut grpc).await);
        }
        for _ in 0..100 {
            over_rest.push(rest_get().await);
        }
    }
    over_grpc.sort();
    over_rest.sort();
    let (g50, r50) = (percentile(&over_grpc, 0.5), percentile(&over_rest, 0.5));
    println!(
        "FolderService.Get, {} calls each, one connection each, sequential:",
        over_grpc.len()
    );
    println!(
        "  gRPC (HTTP/2):   median {g50:?}, p99 {:?}",
        percentile(&over_grpc, 0.99)
    );
    println!(
        "  REST (HTTP/1.1): median {r50:?}, p99 {:?}",
        percentile(&over_rest, 0.99)
    );
    println!(
        "  gRPC / REST median: {:.2}",
        g50.as_secs_f64() / r50.as_secs_f64()
    );
}
