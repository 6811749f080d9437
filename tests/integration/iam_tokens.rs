//! The IAM store wired into the gateway, its first-start bootstrap, and `POST /iam/v1/tokens`:
//! a Yandex key file gets an IAM token, and every rule of the service-account JWT refuses with
//! its own message. On SQLite always; the token flow also on PostgreSQL when
//! `WIF_TEST_DATABASE_URL` is set (a schema of its own per test, dropped at the end).

use std::os::unix::fs::PermissionsExt as _;

use serde_json::{Value, json};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::ids;
use wif_gateway::iam::store::{OpenOptions, PageRequest, Store};
use wif_gateway::testkit::{Jwt, KeyKind, TestKey, decode_payload};

use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::Reply;
use crate::support::iam::{KeyFile, audience, claims, header, jwt, sdk_audience, sqlite_store};
use crate::support::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_first_start_bootstraps_once_and_writes_a_private_key_file() {
    let options = crate::support::gateway::Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options.clone()).await;
    let path = gw.dir.path().join("admin-key.json");
    assert_eq!(mode(&path), 0o600, "the key file is private");
    let file = KeyFile::bootstrap(&gw);
    for field in [
        "id",
        "service_account_id",
        "created_at",
        "key_algorithm",
        "public_key",
        "private_key",
    ] {
        assert!(file.json[field].is_string(), "{field} in {}", file.json);
    }
    assert_eq!(file.json["key_algorithm"], "RSA_2048");
    assert!(
        file.private_key().starts_with(&format!(
            "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{}>\n-----BEGIN PRIVATE KEY-----\n",
            file.id()
        )),
        "{}",
        file.private_key().lines().next().unwrap_or("")
    );
    let ready = gw.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body["store"].as_str()),
        (200, Some("ok"))
    );

    // What the bootstrap made: one cloud, one folder, the administrator with the owner role on
    // the cloud, and the key of the file.
    let store = gw.state.store().expect("store").clone();
    let clouds = store.list_clouds(&PageRequest::default()).await.unwrap();
    assert_eq!(clouds.items.len(), 1);
    let cloud = &clouds.items[0];
    let account = store
        .get_service_account(file.service_account_id())
        .await
        .unwrap();
    assert_eq!(
        (account.name.as_str(), &account.cloud_id),
        ("admin", &cloud.id)
    );
    let bindings = store
        .list_access_bindings(
            &wif_gateway::iam::store::ResourceRef::new(ResourceKind::Cloud, cloud.id.clone()),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(bindings.items.len(), 1);
    assert_eq!(bindings.items[0].role_id, "resource-manager.clouds.owner");
    assert_eq!(bindings.items[0].subject.id, account.id);
    let key = store.get_authorized_key(file.id()).await.unwrap();
    assert_eq!(key.public_key, file.json["public_key"].as_str().unwrap());
    let audit = gw.dir.path().join("audit.log");
    wait_for("the bootstrap audited", async || {
        audit_lines(&audit)
            .iter()
            .any(|l| l["event"] == "iam_bootstrap")
    })
    .await;

    // A restart never bootstraps again: the file stays as it was, even once it is gone.
    let written = std::fs::read_to_string(&path).unwrap();
    let dir = gw.stop_keeping_dir().await;
    let gw = Gateway::start_in(dir, "", options.clone()).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    std::fs::remove_file(&path).unwrap();
    let dir = gw.stop_keeping_dir().await;
    let gw = Gateway::start_in(dir, "", options).await;
    assert!(
        !path.exists(),
        "a store that is not empty is never bootstrapped again"
    );
    let store = gw.state.store().expect("store");
    assert_eq!(
        store
            .list_clouds(&PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let audit = audit_lines(&gw.dir.path().join("audit.log"));
    assert_eq!(
        audit
            .iter()
            .filter(|l| l["event"] == "iam_bootstrap")
            .count(),
        1,
        "one bootstrap in three starts"
    );
    let raw = std::fs::read_to_string(gw.dir.path().join("audit.log")).unwrap();
    assert!(!raw.contains("PRIVATE KEY"), "no key in the audit log");
    gw.stop().await;
}

#[tokio::test]
async fn without_a_store_the_gateway_runs_as_before_and_the_iam_api_is_off() {
    let gw = Gateway::start("").await;
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert!(ready.body.get("store").is_none(), "{}", ready.text);
    for (method, path) in [("POST", "/iam/v1/tokens"), ("GET", "/iam/v1/keys")] {
        let reply = gw.iam(method, path, None, None).await;
        assert_eq!((reply.status, reply.grpc_code()), (501, 12), "{path}");
        assert!(reply.message().contains("[store]"), "{}", reply.message());
    }
    assert!(!gw.dir.path().join("admin-key.json").exists());
}

#[tokio::test]
async fn the_bootstrap_key_file_gets_an_iam_token_that_authenticates_management_calls() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let file = KeyFile::bootstrap(&gw);
    let before = now();
    let reply = gw
        .iam_token_for(&jwt(&gw, &file.signer(), file.service_account_id()))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let token = reply.body["iamToken"].as_str().unwrap().to_owned();
    let expires = reply.body["expiresAt"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 20, "{expires}");
    // The IAM token is the gateway's own access token: it verifies offline with its JWKS.
    let claims = crate::exchange::verify_offline(&gw, &token).await;
    assert_eq!(claims, decode_payload(&token));
    assert_eq!(claims["sub"], file.service_account_id());
    assert_eq!(claims["iss"], gw.url.as_str());
    assert_eq!(claims["client_id"], file.id());
    assert!(claims.get("act").is_none());
    let exp = claims["exp"].as_i64().unwrap();
    assert!((before + 3600..=now() + 3600).contains(&exp));
    assert_eq!(wif_gateway::time::rfc3339(exp), expires);

    let listed = gw
        .iam(
            "GET",
            &format!(
                "/iam/v1/keys?serviceAccountId={}",
                file.service_account_id()
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let keys = listed.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], file.id());
    assert_eq!(keys[0]["serviceAccountId"], file.service_account_id());
    assert_eq!(keys[0]["keyAlgorithm"], "RSA_2048");
    assert_eq!(keys[0]["publicKey"], file.json["public_key"]);
    assert!(keys[0].get("privateKey").is_none());

    // `aud` may be an array (golang-jwt's RegisteredClaims writes one), and `nbf` is tolerated.
    let t = now();
    let array = Jwt::new(
        &header("PS256", file.id()),
        &json!({"iss": file.service_account_id(), "aud": ["https://elsewhere", audience(&gw)],
                "iat": t, "nbf": t, "exp": t + 3600}),
    )
    .sign(&file.signer());
    assert_eq!(gw.iam_token_for(&array).await.status, 200);

    let metrics = gw.metrics().await;
    for needle in [
        "wif_gateway_iam_requests_total{method=\"yandex.cloud.iam.v1.IamTokenService/Create\",code=\"OK\"}",
        "wif_gateway_iam_requests_total{method=\"yandex.cloud.iam.v1.KeyService/List\",code=\"OK\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_third_party_signer_reads_the_yandex_key_file_as_it_is() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let file = KeyFile::bootstrap(&gw);
    // jsonwebtoken (an independent JWT implementation) gets private_key verbatim, the
    // "PLEASE DO NOT REMOVE THIS LINE!" line included, as the Yandex SDKs do.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key().as_bytes())
        .expect("jsonwebtoken reads the key file's private_key");
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    jwt_header.kid = Some(file.id().to_owned());
    let t = now();
    let jwt = jsonwebtoken::encode(
        &jwt_header,
        &claims(file.service_account_id(), &audience(&gw), t, t + 3600),
        &key,
    )
    .expect("sign");
    let reply = gw.iam_token_for(&jwt).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // And it verifies the IAM token it got with the gateway's published key.
    let token = reply.body["iamToken"].as_str().unwrap();
    crate::exchange::verify_offline(&gw, token).await;
    gw.stop().await;
}

/// A second service account in the administrator's folder, with a key made through the API.
async fn other_account(gw: &Gateway, admin: &KeyFile, admin_token: &str) -> (String, TestKey) {
    let other_id = crate::support::iam::add_account(gw, admin, "other").await;
    let created = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(admin_token),
            Some(json!({"serviceAccountId": other_id}).to_string()),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let key = crate::support::iam::signer(
        created.body["privateKey"].as_str().unwrap(),
        created.body["key"]["id"].as_str().unwrap(),
    );
    (other_id, key)
}

#[tokio::test]
async fn service_account_jwts_are_refused_with_the_rule_they_break() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let file = KeyFile::bootstrap(&gw);
    let admin = file.service_account_id().to_owned();
    let signer = file.signer();
    let token = gw.iam_token(&file).await;
    let (other, other_key) = other_account(&gw, &file, &token).await;
    let aud = audience(&gw);
    let t = now();
    let good = claims(&admin, &aud, t, t + 360);
    let ps256 = header("PS256", file.id());
    let stranger = TestKey::generate(KeyKind::Ps256, file.id());
    let es256 = TestKey::generate(KeyKind::Es256, file.id());
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    // (name, JWT, message substring)
    let cases: Vec<(&str, String, String)> = vec![
        (
            "RS256 with the right key",
            Jwt::new(&header("RS256", file.id()), &good).sign_rsa(&signer, "RS256"),
            "jwt alg RS256 is not accepted: a service account's JWT must be signed with PS256"
                .into(),
        ),
        (
            "ES256",
            Jwt::new(&header("ES256", file.id()), &good).sign(&es256),
            "jwt alg ES256 is not accepted".into(),
        ),
        (
            "alg none",
            Jwt::new(&header("none", file.id()), &good).unsigned(),
            "jwt alg \"none\" is not supported: unsigned tokens are never accepted".into(),
        ),
        (
            "HS256 keyed with the public key",
            Jwt::new(&header("HS256", file.id()), &good).sign_hmac(
                "HS256",
                file.json["public_key"].as_str().unwrap().as_bytes(),
            ),
            "symmetric (HMAC) algorithms are never accepted".into(),
        ),
        (
            "no kid",
            Jwt::new(&json!({"typ": "JWT", "alg": "PS256"}), &good).sign(&signer),
            "jwt header has no kid".into(),
        ),
        (
            "unknown kid",
            Jwt::new(&header("PS256", "ajenosuchkey00000000"), &good)
                .sign(&signer.with_kid("ajenosuchkey00000000")),
            "jwt kid \"ajenosuchkey00000000\" names no authorized key".into(),
        ),
        (
            "kid of another account's key",
            Jwt::new(&header("PS256", other_key.kid()), &good).sign(&other_key),
            format!(
                "jwt kid \"{}\" is an authorized key of service account \"{other}\", not of iss \"{admin}\"",
                other_key.kid()
            ),
        ),
        (
            "wrong iss",
            Jwt::new(&ps256, &edit(&|c| c["iss"] = json!(other.clone()))).sign(&signer),
            format!(
                "jwt kid \"{}\" is an authorized key of service account \"{admin}\", not of iss \"{other}\"",
                file.id()
            ),
        ),
        (
            "no iss",
            Jwt::new(
                &ps256,
                &edit(&|c| {
                    c.as_object_mut()
                        .unwrap()
                        .remove("iss")
                        .map(drop)
                        .unwrap_or(())
                }),
            )
            .sign(&signer),
            "jwt has no iss claim".into(),
        ),
        (
            "signature by another key",
            Jwt::new(&ps256, &good).sign(&stranger),
            format!(
                "jwt signature does not verify with authorized key \"{}\" (PS256)",
                file.id()
            ),
        ),
        (
            "payload changed after signing",
            {
                let signed = Jwt::new(&ps256, &good).sign(&signer);
                let (h, _, s) = wif_gateway::testkit::segments(&signed);
                let forged =
                    wif_gateway::testkit::b64url(edit(&|c| c["exp"] = json!(t + 3000)).to_string());
                format!("{h}.{forged}.{s}")
            },
            "jwt signature does not verify".into(),
        ),
        (
            "wrong aud",
            Jwt::new(
                &ps256,
                &edit(&|c| c["aud"] = json!("https://iam.api.cloud.yandex.net/iam/v1/tokens")),
            )
            .sign(&signer),
            format!(
                "jwt aud [\"https://iam.api.cloud.yandex.net/iam/v1/tokens\"] is not accepted here (accepted: \"{aud}\", \"{}\")",
                sdk_audience(&gw)
            ),
        ),
        (
            "no aud",
            Jwt::new(
                &ps256,
                &edit(&|c| {
                    c.as_object_mut()
                        .unwrap()
                        .remove("aud")
                        .map(drop)
                        .unwrap_or(())
                }),
            )
            .sign(&signer),
            "jwt has no aud claim".into(),
        ),
        (
            "lifetime over an hour",
            Jwt::new(&ps256, &edit(&|c| c["exp"] = json!(t + 3601))).sign(&signer),
            "jwt lifetime exp − iat is 3601 s; at most 3600 s is accepted".into(),
        ),
        (
            "expired",
            Jwt::new(
                &ps256,
                &edit(&|c| {
                    c["iat"] = json!(t - 3000);
                    c["exp"] = json!(t - 600);
                }),
            )
            .sign(&signer),
            format!("jwt expired at {}", wif_gateway::time::rfc3339(t - 600)),
        ),
        (
            "issued in the future",
            Jwt::new(
                &ps256,
                &edit(&|c| {
                    c["iat"] = json!(t + 600);
                    c["exp"] = json!(t + 900);
                }),
            )
            .sign(&signer),
            "jwt is issued in the future".into(),
        ),
        (
            "no iat",
            Jwt::new(
                &ps256,
                &edit(&|c| {
                    c.as_object_mut()
                        .unwrap()
                        .remove("iat")
                        .map(drop)
                        .unwrap_or(())
                }),
            )
            .sign(&signer),
            "jwt has no iat claim".into(),
        ),
        (
            "not yet valid",
            Jwt::new(&ps256, &edit(&|c| c["nbf"] = json!(t + 600))).sign(&signer),
            "jwt is not valid before".into(),
        ),
        (
            "not a JWT",
            "not-a-jwt".into(),
            "jwt has 1 segments; a JWT in compact form has 3".into(),
        ),
        (
            "a header that names a key",
            Jwt::new(
                &json!({"alg": "PS256", "kid": file.id(), "jku": "https://evil.example/jwks"}),
                &good,
            )
            .sign(&signer),
            "jwt header jku is not accepted".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, jwt, expected) in &cases {
        let reply = gw.iam_token_for(jwt).await;
        let ok = reply.status == 401
            && reply.grpc_code() == 16
            && reply.body["details"] == json!([])
            && reply.message().contains(expected.as_str())
            && reply.headers["cache-control"] == "no-store"
            && (jwt.len() < 20 || !reply.text.contains(jwt.as_str()));
        if !ok {
            failures.push(format!("{name}: {} {}", reply.status, reply.text));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // A malformed body is INVALID_ARGUMENT (400, code 3), not a refusal of credentials.
    let bodies: Vec<(&str, String, &str)> = vec![
        (
            "not JSON",
            "jwt=abc".into(),
            "not a valid CreateIamTokenRequest JSON object",
        ),
        ("no jwt", "{}".into(), "the body has no jwt"),
        (
            "jwt not a string",
            "{\"jwt\": 5}".into(),
            "not a valid CreateIamTokenRequest",
        ),
        (
            "unknown field",
            "{\"jwt\": \"a.b.c\", \"JWT\": 1}".into(),
            "unknown field",
        ),
        (
            "both identities",
            json!({"jwt": "a.b.c", "yandexPassportOauthToken": "y0_x"}).to_string(),
            "exactly one of jwt and yandexPassportOauthToken",
        ),
        (
            "a Yandex Passport token",
            json!({"yandexPassportOauthToken": "y0_x"}).to_string(),
            "yandexPassportOauthToken is not accepted here",
        ),
        (
            "jwt over 8000 characters",
            json!({"jwt": "a".repeat(8001)}).to_string(),
            "jwt is longer than 8000 characters",
        ),
    ];
    for (name, body, expected) in bodies {
        let reply: Reply = gw.iam("POST", "/iam/v1/tokens", None, Some(body)).await;
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (400, 3),
            "{name}: {}",
            reply.text
        );
        assert!(reply.message().contains(expected), "{name}: {}", reply.text);
    }
    let get = gw.iam("GET", "/iam/v1/tokens", None, None).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers["allow"], "POST");

    // A deleted key gets nothing any more; the refusals are counted by code.
    gw.state
        .store()
        .unwrap()
        .delete_authorized_key(other_key.kid(), None, now())
        .await
        .unwrap();
    let reply = gw.iam_token_for(&jwt(&gw, &other_key, &other)).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.message().contains("names no authorized key"),
        "{}",
        reply.text
    );
    let metrics = gw.metrics().await;
    assert!(metrics.contains("wif_gateway_iam_requests_total{method=\"yandex.cloud.iam.v1.IamTokenService/Create\",code=\"UNAUTHENTICATED\"}"));
    assert!(metrics.contains("wif_gateway_iam_requests_total{method=\"yandex.cloud.iam.v1.IamTokenService/Create\",code=\"INVALID_ARGUMENT\"}"));
    gw.stop().await;
}

#[tokio::test]
async fn configured_token_audiences_replace_the_default() {
    let options = crate::support::gateway::Options {
        iam: "bootstrap_key_file = \"admin-key.json\"\ntoken_audiences = [\"https://iam.api.cloud.yandex.net/iam/v1/tokens\"]".into(),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options).await;
    let file = KeyFile::bootstrap(&gw);
    let t = now();
    let yandex = Jwt::new(
        &header("PS256", file.id()),
        &claims(
            file.service_account_id(),
            "https://iam.api.cloud.yandex.net/iam/v1/tokens",
            t,
            t + 360,
        ),
    )
    .sign(&file.signer());
    assert_eq!(gw.iam_token_for(&yandex).await.status, 200);
    let own = gw
        .iam_token_for(&jwt(&gw, &file.signer(), file.service_account_id()))
        .await;
    assert_eq!(own.status, 401, "the default is replaced, not extended");
    gw.stop().await;
}

/// A PostgreSQL schema of its own for one test, dropped at the end; `None` without
/// `WIF_TEST_DATABASE_URL`.
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    async fn create() -> Option<PgSchema> {
        let Ok(url) = std::env::var("WIF_TEST_DATABASE_URL") else {
            eprintln!("note: PostgreSQL IAM test skipped; set WIF_TEST_DATABASE_URL to run it");
            return None;
        };
        let name = format!(
            "wif_test_{}",
            ids::generate(ResourceKind::Operation).unwrap()
        );
        // Opening a store with its own schema creates the schema.
        let store = Store::open_with(
            &url,
            &OpenOptions {
                pg_schema: Some(name.clone()),
                ..OpenOptions::default()
            },
        )
        .await
        .expect("PostgreSQL");
        store.close().await;
        Some(PgSchema { url, name })
    }

    /// A store URL whose connections use the schema.
    fn store_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={}", self.url, self.name)
    }

    fn mark(&self, test: &str) {
        if let Ok(marker) = std::env::var("WIF_PG_MARKER") {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(marker)
                .expect("marker");
            writeln!(file, "{test}").expect("marker");
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
    }
}

#[tokio::test]
async fn the_token_flow_works_on_postgresql() {
    let Some(schema) = PgSchema::create().await else {
        return;
    };
    let options = crate::support::gateway::Options {
        store: Some(format!("url = {:?}", schema.store_url())),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options.clone()).await;
    assert_eq!(gw.get("/readyz").await.body["store"], "ok");
    let file = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&file).await;
    let listed = gw
        .iam(
            "GET",
            &format!(
                "/iam/v1/keys?serviceAccountId={}",
                file.service_account_id()
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["keys"][0]["id"], file.id());
    let refused = gw
        .iam_token_for(&jwt(
            &gw,
            &TestKey::generate(KeyKind::Ps256, file.id()),
            file.service_account_id(),
        ))
        .await;
    assert_eq!(refused.status, 401);
    // A second gateway on the same database finds the store bootstrapped.
    let written = std::fs::read_to_string(gw.dir.path().join("admin-key.json")).unwrap();
    let second = Gateway::start_with("", options).await;
    assert!(!second.dir.path().join("admin-key.json").exists());
    assert_eq!(
        std::fs::read_to_string(gw.dir.path().join("admin-key.json")).unwrap(),
        written
    );
    let listed = second
        .iam(
            "GET",
            "/iam/v1/keys",
            Some(&second.iam_token(&file).await),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    second.stop_keeping_dir().await;
    gw.stop_keeping_dir().await;
    schema.mark("the_token_flow_works_on_postgresql");
}

#[tokio::test]
async fn gateways_starting_together_on_one_empty_store_bootstrap_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("iam.db").display());
    let schema = PgSchema::create().await;
    let url = schema.as_ref().map_or(url, PgSchema::store_url);
    let stores: Vec<Store> = {
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(Store::open(&url).await.unwrap());
        }
        stores
    };
    let mut runs = tokio::task::JoinSet::new();
    for (i, store) in stores.iter().enumerate() {
        let (store, key_file) = (
            store.clone(),
            dir.path().join(format!("admin-key-{i}.json")),
        );
        runs.spawn(async move {
            wif_gateway::iam::bootstrap::ensure(&store, &key_file, now())
                .await
                .unwrap()
        });
    }
    let started = runs.join_all().await;
    let bootstrapped: Vec<_> = started
        .iter()
        .filter(|s| matches!(s, wif_gateway::iam::bootstrap::Started::Bootstrapped { .. }))
        .collect();
    assert_eq!(bootstrapped.len(), 1, "{started:?}");
    let admin = bootstrapped[0].administrator().unwrap().clone();
    for s in &started {
        assert_eq!(
            s.administrator(),
            Some(&admin),
            "everyone finds the same administrator"
        );
    }
    let files = (0..4)
        .filter(|i| dir.path().join(format!("admin-key-{i}.json")).exists())
        .count();
    assert_eq!(files, 1, "one key file");
    for store in &stores {
        store.close().await;
    }
    if let Some(schema) = schema {
        schema.mark("gateways_starting_together_on_one_empty_store_bootstrap_it_once");
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_without_authentication_and_names_the_answers_fields() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let doc = gw.get("/openapi.json").await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_eq!(
        doc.body["paths"]["/iam/v1/tokens"]["post"]["operationId"],
        "IamTokenService.Create"
    );
    assert_eq!(
        doc.body["paths"]["/iam/v1/tokens"]["post"]["security"],
        json!([{}])
    );
    // A real answer has every field its schema requires, and no other.
    let file = KeyFile::bootstrap(&gw);
    let token = gw
        .iam_token_for(&jwt(&gw, &file.signer(), file.service_account_id()))
        .await
        .body["iamToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = gw
        .iam(
            "GET",
            &format!("/iam/v1/keys/{}", file.id()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(key.status, 200, "{}", key.text);
    let schema = &doc.body["components"]["schemas"]["Key"];
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut fields: Vec<&str> = key
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    required.sort_unstable();
    fields.sort_unstable();
    assert_eq!(fields, required);
    let missing = gw.iam("GET", "/iam/v1/keys/nope", Some(&token), None).await;
    assert_eq!(missing.status, 404);
    let status: Vec<&String> = missing.body.as_object().unwrap().keys().collect();
    assert_eq!(status, ["code", "details", "message"]);
}
