//! The cost of verifying one AWS Signature Version 4 signature at `POST /iam/v1/authorize`.
//!
//! * `sigv4/verify`: the whole verification of one signed S3 request (`PUT
//!   /bucket/photo%201.jpg?versionId=3` with five headers, four of them signed): read the
//!   Authorization header and canonicalize the request ([`Signed::from_request`]), open the
//!   access key's sealed secret (AES-256-GCM), derive the signing key (four HMAC-SHA256) and
//!   compare the HMAC of the string to sign.
//! * `sigv4/canonicalize`, `sigv4/open_secret`, `sigv4/derive_and_compare`: those three steps
//!   alone.
//!
//! Medians: `target/criterion/sigv4/<bench>/new/estimates.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use wif_gateway::iam::access_keys::aad;
use wif_gateway::iam::sealing::{Secret, SecretKeys};
use wif_gateway::iam::sigv4::{self, HttpRequest, Signed};

const KEY_ID: &str = "YCAJEexampleexample-key_1";
const SECRET: &str = "YCexampleexampleexampleexample-secret_12";
const DATE: &str = "20261202T080000Z";
const BODY_SHA256: &str = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";

fn signed_headers() -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        ("Host", "storage.example.test"),
        ("Content-Type", "image/jpeg"),
        ("X-Amz-Content-Sha256", BODY_SHA256),
        ("X-Amz-Date", DATE),
        ("User-Agent", "bench/1.0"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    let names = ["content-type", "host", "x-amz-content-sha256", "x-amz-date"];
    let request = HttpRequest {
        method: "PUT",
        path: "/bucket/photo%201.jpg",
        query: "versionId=3",
        headers: &headers,
        payload_hash: BODY_SHA256,
    };
    let canonical = sigv4::canonical_request(&request, &names, "s3", false).unwrap();
    let scope = "20261202/ru-central1/s3/aws4_request";
    let sts = sigv4::string_to_sign(DATE, scope, &canonical);
    let signature = sigv4::signature(SECRET.as_bytes(), "20261202", "ru-central1", "s3", &sts);
    headers.push((
        "Authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, SignedHeaders={}, Signature={signature}",
            names.join(";")
        ),
    ));
    headers
}

fn bench(c: &mut Criterion) {
    let headers = signed_headers();
    let request = HttpRequest {
        method: "PUT",
        path: "/bucket/photo%201.jpg",
        query: "versionId=3",
        headers: &headers,
        payload_hash: BODY_SHA256,
    };
    let keys = SecretKeys::new(vec![("k1".into(), [7; 32])]).unwrap();
    let associated = aad("ajeaccesskey00000001", "ajeserviceacc0000001", KEY_ID);
    let sealed = keys
        .seal(&Secret::new(SECRET.as_bytes().to_vec()), &associated)
        .unwrap();
    let signed = Signed::from_request(&request).unwrap();
    assert_eq!(signed.verify(SECRET.as_bytes()), Ok(()));

    let mut group = c.benchmark_group("sigv4");
    group.bench_function("verify", |b| {
        b.iter(|| {
            let signed = Signed::from_request(black_box(&request)).unwrap();
            let secret = keys.open(black_box(&sealed), &associated).unwrap();
            signed.verify(secret.as_bytes()).unwrap();
        });
    });
    group.bench_function("canonicalize", |b| {
        b.iter(|| Signed::from_request(black_box(&request)).unwrap());
    });
    group.bench_function("open_secret", |b| {
        b.iter(|| keys.open(black_box(&sealed), &associated).unwrap());
    });
    group.bench_function("derive_and_compare", |b| {
        b.iter(|| black_box(&signed).verify(SECRET.as_bytes()).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
