//! Management calls of the IAM API: authentication by the gateway's own IAM tokens (each
//! refusal with its rule), authorized keys at the Yandex REST paths (the private key answered
//! once, never again, never stored or logged), who may manage whose keys, the audit line of
//! every mutation, the `iam bootstrap-key` subcommand, and a database outage.

use std::process::Command;

use serde_json::{Value, json};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::store::ResourceRef;
use wif_gateway::testkit::{Jwt, KeyKind, TestKey, b64url};

use crate::operate::{audit_lines, wait_for};
use crate::support::binary::BIN;
use crate::support::gateway::{AUD, FED, SA, SUBJECT, scenario};
use crate::support::iam::{KeyFile, LoggedDevGateway, add_account, jwt, signer, sqlite_store};
use crate::support::*;

/// Grants `role` on service account `on` to service account `to`, directly in the store, and
/// applies it before this returns.
async fn grant(gw: &Gateway, role: &str, on: &str, to: &str) {
    crate::support::iam::grant(
        gw,
        role,
        ResourceRef::new(ResourceKind::ServiceAccount, on),
        to,
    )
    .await;
}

#[tokio::test]
async fn bearer_tokens_are_refused_with_the_rule_they_break() {
    let issuer = TestIssuer::start().await;
    let caller_key = TestKey::generate(KeyKind::Es256, "caller");
    issuer.add_key(&caller_key);
    let gw = Gateway::start_with(&scenario(&issuer), sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let good = gw.iam_token(&admin).await;
    let snapshot = gw.state.snapshot();
    let minter = &snapshot.minter;
    let expired = minter
        .mint_for_key(admin.service_account_id(), admin.id(), now() - 7200)
        .unwrap()
        .access_token;
    // The same claims as a good token, signed by a key that is not the gateway's.
    let foreign_key = TestKey::generate(KeyKind::Es256, minter.active_key().kid());
    let (h, p, _) = wif_gateway::testkit::segments(&good);
    let foreign = Jwt::encoded(h, p).sign(&foreign_key);
    let stranger_kid = TestKey::generate(KeyKind::Es256, "someone-else");
    let foreign_kid = Jwt::new(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "someone-else"}),
        &wif_gateway::testkit::decode_payload(&good),
    )
    .sign(&stranger_kid);
    // A deleted service account's token.
    let doomed = add_account(&gw, &admin, "doomed").await;
    let orphan = minter
        .mint_for_key(&doomed, "ajekey00000000000000", now())
        .unwrap()
        .access_token;
    gw.state
        .store()
        .unwrap()
        .delete_service_account(&doomed, None, now())
        .await
        .unwrap();
    // The exchange's token for a service account of the TOML files only.
    let exchanged = gw
        .exchange(SA, &issuer.token(&caller_key, SUBJECT, AUD))
        .await
        .access_token()
        .to_owned();
    assert!(!exchanged.is_empty());
    let _ = FED;
    let cases: Vec<(&str, Option<String>, String)> = vec![
        (
            "no Authorization header",
            None,
            "the request has no Authorization header".into(),
        ),
        (
            "another scheme",
            Some("Basic YWRtaW46YWRtaW4=".into()),
            "the Authorization header uses the scheme \"Basic\", not Bearer".into(),
        ),
        (
            "Bearer and nothing",
            Some("Bearer ".into()),
            "the Authorization header has no token after Bearer".into(),
        ),
        (
            "not a JWT",
            Some("Bearer t1.9euelZqMkYqNx".into()),
            "the IAM token has 2 segments".into(),
        ),
        (
            "expired",
            Some(format!("Bearer {expired}")),
            "the IAM token expired at".into(),
        ),
        (
            "signed by another key under the gateway's kid",
            Some(format!("Bearer {foreign}")),
            "the IAM token's signature does not verify with this gateway's key".into(),
        ),
        (
            "signed by a key the gateway does not have",
            Some(format!("Bearer {foreign_kid}")),
            "the IAM token is signed by key \"someone-else\" (ES256), which is not a key of this gateway".into(),
        ),
        (
            "of a deleted service account",
            Some(format!("Bearer {orphan}")),
            format!("the IAM token's subject \"{doomed}\" is not a service account of the IAM store"),
        ),
        (
            "of a service account of the configuration files only",
            Some(format!("Bearer {exchanged}")),
            format!("the IAM token's subject \"{SA}\" is not a service account of the IAM store"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, authorization, expected) in &cases {
        let mut request = gw.client.get(format!(
            "{}/iam/v1/keys?serviceAccountId={}",
            gw.url,
            admin.service_account_id()
        ));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let reply = crate::support::gateway::Reply::from(request.send().await.unwrap()).await;
        let ok = reply.status == 401
            && reply.grpc_code() == 16
            && reply.message().contains(expected.as_str())
            && authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_none_or(|t| t.len() < 20 || !reply.text.contains(t));
        if !ok {
            failures.push(format!("{name}: {} {}", reply.status, reply.text));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let ok = gw.iam("GET", "/iam/v1/keys", Some(&good), None).await;
    assert_eq!(
        ok.status, 200,
        "the caller's own keys by default: {}",
        ok.text
    );
    assert_eq!(ok.body["keys"][0]["id"], admin.id());
    gw.stop().await;
}

#[tokio::test]
async fn a_created_private_key_is_answered_once_and_works_until_the_key_is_deleted() {
    let options = crate::support::gateway::Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let account = admin.service_account_id();
    let created = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(&token),
            Some(
                json!({"serviceAccountId": account, "description": "ci deployer",
                        "format": "PEM_FILE", "keyAlgorithm": "RSA_4096"})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.headers["cache-control"], "no-store");
    let key = created.body["key"].clone();
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(key["serviceAccountId"], account);
    assert_eq!(key["description"], "ci deployer");
    assert_eq!(key["keyAlgorithm"], "RSA_4096");
    assert!(
        key["publicKey"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    assert!(key["createdAt"].as_str().unwrap().ends_with('Z'));
    let private = created.body["privateKey"].as_str().unwrap().to_owned();
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 PEM"
    );
    let new_signer = signer(&private, &id);

    // Never again: not by Get, not by List.
    let got = gw
        .iam("GET", &format!("/iam/v1/keys/{id}"), Some(&token), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body, key);
    let listed = gw.iam("GET", "/iam/v1/keys", Some(&token), None).await;
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 2);
    for reply in [&got, &listed] {
        assert!(!reply.text.contains("PRIVATE KEY"), "{}", reply.text);
    }
    // Pages.
    let first = gw
        .iam("GET", "/iam/v1/keys?pageSize=1", Some(&token), None)
        .await;
    assert_eq!(first.body["keys"].as_array().unwrap().len(), 1);
    let next = first.body["nextPageToken"].as_str().unwrap();
    let second = gw
        .iam(
            "GET",
            &format!("/iam/v1/keys?pageSize=1&pageToken={next}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(second.body["keys"].as_array().unwrap().len(), 1);
    assert!(second.body.get("nextPageToken").is_none());
    assert_ne!(first.body["keys"][0]["id"], second.body["keys"][0]["id"]);

    // The new key gets IAM tokens.
    let reply = gw.iam_token_for(&jwt(&gw, &new_signer, account)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Update: the description only.
    let updated = gw
        .iam(
            "PATCH",
            &format!("/iam/v1/keys/{id}"),
            Some(&token),
            Some(json!({"updateMask": "description", "description": "rotated"}).to_string()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["done"], true);
    assert_eq!(
        updated.body["metadata"],
        json!({"@type": "type.googleapis.com/yandex.cloud.iam.v1.UpdateKeyMetadata", "keyId": id})
    );
    assert_eq!(updated.body["response"]["description"], "rotated");
    assert_eq!(
        updated.body["response"]["@type"], "type.googleapis.com/yandex.cloud.iam.v1.Key",
        "clients unpack the response by its type URL"
    );
    assert_eq!(updated.body["createdBy"], account);
    let refused = gw
        .iam(
            "PATCH",
            &format!("/iam/v1/keys/{id}"),
            Some(&token),
            Some(json!({"updateMask": "publicKey", "description": "x"}).to_string()),
        )
        .await;
    assert_eq!(
        (refused.status, refused.grpc_code()),
        (400, 3),
        "{}",
        refused.text
    );

    // Delete: the key stops working.
    let deleted = gw
        .iam("DELETE", &format!("/iam/v1/keys/{id}"), Some(&token), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.body["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let gone = gw
        .iam("GET", &format!("/iam/v1/keys/{id}"), Some(&token), None)
        .await;
    assert_eq!((gone.status, gone.grpc_code()), (404, 5), "{}", gone.text);
    let reply = gw.iam_token_for(&jwt(&gw, &new_signer, account)).await;
    assert_eq!(reply.status, 401);

    // Bad requests.
    let bad: Vec<(&str, Value)> = vec![
        ("algorithm", json!({"keyAlgorithm": "RSA_1024"})),
        ("format", json!({"format": "JSON"})),
        ("unknown field", json!({"serviceAcountId": account})),
        ("description", json!({"description": "d".repeat(257)})),
    ];
    for (name, body) in bad {
        let reply = gw
            .iam("POST", "/iam/v1/keys", Some(&token), Some(body.to_string()))
            .await;
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (400, 3),
            "{name}: {}",
            reply.text
        );
    }
    let missing = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(&token),
            Some(json!({"serviceAccountId": "ajenosuchaccount0000"}).to_string()),
        )
        .await;
    assert_eq!(
        (missing.status, missing.grpc_code()),
        (404, 5),
        "{}",
        missing.text
    );
    let put = gw.iam("PUT", "/iam/v1/keys", Some(&token), None).await;
    assert_eq!(put.status, 405);
    let unknown = gw.iam("POST", "/iam/v1/tokens:refresh", None, None).await;
    assert_eq!((unknown.status, unknown.grpc_code()), (404, 5));

    // One audit line per mutation, reads not audited, no secret anywhere in it.
    let path = gw.dir.path().join("audit.log");
    wait_for("the mutations audited", async || {
        audit_lines(&path)
            .iter()
            .any(|l| l["method"] == "yandex.cloud.iam.v1.KeyService/Delete")
    })
    .await;
    let lines: Vec<Value> = audit_lines(&path)
        .into_iter()
        .filter(|l| l["event"] == "management")
        .collect();
    let methods: Vec<&str> = lines
        .iter()
        .map(|l| l["method"].as_str().unwrap())
        .collect();
    assert!(
        !methods
            .iter()
            .any(|m| m.ends_with("/Get") || m.ends_with("/List"))
    );
    let create = lines
        .iter()
        .find(|l| {
            l["method"] == "yandex.cloud.iam.v1.KeyService/Create" && l["decision"] == "allow"
        })
        .expect("create audited");
    assert_eq!(create["principal"], account);
    assert_eq!(create["resource"], format!("authorized_key:{id}"));
    assert_eq!(create["code"], "OK");
    let refused_line = lines
        .iter()
        .find(|l| l["method"] == "yandex.cloud.iam.v1.KeyService/Update" && l["decision"] == "deny")
        .expect("refused update audited");
    assert_eq!(refused_line["code"], "INVALID_ARGUMENT");
    let token_line = lines
        .iter()
        .find(|l| {
            l["method"] == "yandex.cloud.iam.v1.IamTokenService/Create" && l["decision"] == "allow"
        })
        .expect("token audited");
    assert_eq!(token_line["verified"], true);
    assert!(token_line["token_sha256"].as_str().unwrap().len() == 64);
    let raw = std::fs::read_to_string(&path).unwrap();
    for secret in [private.as_str(), admin.private_key(), token.as_str()] {
        for line in secret.lines().filter(|l| l.len() > 40) {
            assert!(!raw.contains(line), "the audit log holds a secret");
        }
    }
    assert!(!raw.contains(&token[token.len() - 40..]));
    gw.stop().await;
}

#[tokio::test]
async fn keys_are_managed_by_whoever_holds_a_key_role_on_the_account_and_nobody_else() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        let id = add_account(&gw, &admin, name).await;
        let created = gw
            .iam(
                "POST",
                "/iam/v1/keys",
                Some(&admin_token),
                Some(json!({"serviceAccountId": id}).to_string()),
            )
            .await;
        assert_eq!(
            created.status, 200,
            "the administrator manages anyone's keys"
        );
        let key = signer(
            created.body["privateKey"].as_str().unwrap(),
            created.body["key"]["id"].as_str().unwrap(),
        );
        let reply = gw.iam_token_for(&jwt(&gw, &key, &id)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        tokens.push((
            id,
            created.body["key"]["id"].as_str().unwrap().to_owned(),
            reply.body["iamToken"].as_str().unwrap().to_owned(),
        ));
    }
    let (alice, alice_key, alice_token) = &tokens[0];
    let (bob, _, bob_token) = &tokens[1];
    // An account holds no role on itself by being itself...
    let own = gw.iam("GET", "/iam/v1/keys", Some(alice_token), None).await;
    assert_eq!((own.status, own.grpc_code()), (403, 7), "{}", own.text);
    assert!(
        own.message().contains("iam.authorizedKeys.list"),
        "{}",
        own.text
    );
    // ...until a binding gives it one: then it manages its own keys (the list defaults to its
    // own account)...
    grant(&gw, "iam.serviceAccounts.authorizedKeyAdmin", alice, alice).await;
    let own = gw.iam("GET", "/iam/v1/keys", Some(alice_token), None).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.body["keys"][0]["id"], alice_key.as_str());
    let created = gw
        .iam("POST", "/iam/v1/keys", Some(alice_token), Some("{}".into()))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.body["key"]["serviceAccountId"], alice.as_str());
    // ...and nobody else's.
    let denied = [
        ("GET", format!("/iam/v1/keys?serviceAccountId={bob}"), None),
        (
            "GET",
            format!(
                "/iam/v1/keys?serviceAccountId={}",
                admin.service_account_id()
            ),
            None,
        ),
        (
            "POST",
            "/iam/v1/keys".to_owned(),
            Some(json!({"serviceAccountId": bob}).to_string()),
        ),
        ("GET", format!("/iam/v1/keys/{}", admin.id()), None),
        ("DELETE", format!("/iam/v1/keys/{}", admin.id()), None),
    ];
    for (method, path, body) in denied {
        let reply = gw.iam(method, &path, Some(alice_token), body).await;
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (403, 7),
            "{method} {path}: {}",
            reply.text
        );
        assert!(reply.message().contains("is required on"), "{}", reply.text);
    }
    grant(&gw, "viewer", alice, bob).await;
    let bobs = gw.iam("GET", "/iam/v1/keys", Some(bob_token), None).await;
    assert_eq!(bobs.status, 403, "a role on alice gives nothing on bob");
    let bobs = gw
        .iam(
            "GET",
            &format!("/iam/v1/keys?serviceAccountId={bob}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(
        bobs.body["keys"].as_array().unwrap().len(),
        1,
        "bob's key is untouched"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_database_outage_leaves_the_gateway_ready_and_answers_unavailable() {
    let issuer = TestIssuer::start().await;
    let caller_key = TestKey::generate(KeyKind::Es256, "caller");
    issuer.add_key(&caller_key);
    let gw = Gateway::start_with(&scenario(&issuer), sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    gw.state.store().unwrap().close().await;
    let ready = gw.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["store"], "unavailable");
    let exchanged = gw
        .exchange(SA, &issuer.token(&caller_key, SUBJECT, AUD))
        .await;
    assert_eq!(exchanged.status, 200, "exchanges never need the store");
    let listed = gw.iam("GET", "/iam/v1/keys", Some(&token), None).await;
    assert_eq!(
        (listed.status, listed.grpc_code()),
        (503, 14),
        "{}",
        listed.text
    );
    assert!(!listed.message().contains("sqlite"), "{}", listed.text);
    let reply = gw
        .iam_token_for(&jwt(&gw, &admin.signer(), admin.service_account_id()))
        .await;
    assert_eq!(
        (reply.status, reply.grpc_code()),
        (503, 14),
        "{}",
        reply.text
    );
    gw.stop().await;
}

/// Each PEM body line of `pem` longer than 40 characters: what a leak of the key would contain.
fn pem_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| l.len() > 40 && !l.starts_with("-----") && !l.starts_with("PLEASE"))
        .map(str::to_owned)
        .collect()
}

/// Whether `haystack` contains any of `needles`, in text or as base64url of its bytes.
fn leaks(haystack: &[u8], needles: &[String]) -> Option<String> {
    let text = String::from_utf8_lossy(haystack);
    needles
        .iter()
        .find(|n| text.contains(n.as_str()) || haystack.windows(n.len()).any(|w| w == n.as_bytes()))
        .cloned()
}

#[tokio::test]
async fn private_keys_never_reach_the_audit_log_the_logs_or_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let mut gw = LoggedDevGateway::start(dir.path()).await;
    let (client, base, admin) = (gw.client.clone(), gw.base.clone(), gw.admin.clone());
    let (jwt, token) = (gw.jwt.clone(), gw.token.clone());
    let post = |path: &str, bearer: Option<&str>, body: Value| {
        let mut request = client
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.send()
    };
    let created: Value = post(
        "/iam/v1/keys",
        Some(&token),
        json!({"description": "leak test"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let private = created["privateKey"]
        .as_str()
        .expect("privateKey")
        .to_owned();
    // A refusal that is logged at debug level and audited, with the key's JWT.
    let refused = post(
        "/iam/v1/tokens",
        None,
        json!({"jwt": Jwt::new(&json!({"alg": "PS256", "kid": admin.id()}), &json!({"iss": "x"})).sign(&admin.signer())}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(gw.process.terminate().await.code(), Some(0));

    let mut secrets = pem_lines(&private);
    secrets.extend(pem_lines(admin.private_key()));
    secrets.push(token[token.len() - 60..].to_owned());
    secrets.push(jwt[jwt.len() - 60..].to_owned());
    // The private keys' DER, as base64url too (a different encoding of the same bytes).
    for pem_text in [private.as_str(), admin.private_key()] {
        let der = pem::parse(pem_text).unwrap().into_contents();
        secrets.push(b64url(&der[100..160]));
    }
    let (audit, logs) = (gw.audit(), gw.logs());
    assert!(
        String::from_utf8_lossy(&audit).contains("\"event\":\"management\""),
        "the audit log was written"
    );
    assert!(
        String::from_utf8_lossy(&logs).contains("IAM call refused"),
        "debug logs were written"
    );
    assert_eq!(
        leaks(&audit, &secrets),
        None,
        "the audit log holds a secret"
    );
    assert_eq!(leaks(&logs, &secrets), None, "the logs hold a secret");
    let store = gw.store();
    // The search works: the public half of the created key is there, in the file or its WAL.
    let public = created["key"]["publicKey"].as_str().unwrap();
    assert_eq!(
        leaks(&store, &pem_lines(public)),
        pem_lines(public).first().cloned(),
        "the store holds the public key"
    );
    assert_eq!(leaks(&store, &secrets), None, "the store holds a secret");
}

#[tokio::test]
async fn bootstrap_key_gives_the_administrator_a_new_key_file() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let first = KeyFile::bootstrap(&gw);
    let dir = gw.stop_keeping_dir().await;
    let config = dir.path().join("gateway.toml");
    let out = dir.path().join("recovered.json");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["iam", "bootstrap-key", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(args)
            .env_remove("WIF_STORE_URL")
            .output()
            .expect("run")
    };
    let made = run(&[]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let stdout = String::from_utf8_lossy(&made.stdout);
    assert!(stdout.contains(first.service_account_id()), "{stdout}");
    let recovered = KeyFile::read(&out);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions())
            & 0o777,
        0o600
    );
    assert_eq!(recovered.service_account_id(), first.service_account_id());
    assert_ne!(recovered.id(), first.id());
    assert!(
        recovered
            .private_key()
            .starts_with("PLEASE DO NOT REMOVE THIS LINE!")
    );
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(2), "an existing file is kept");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = run(&["--force"]);
    assert!(forced.status.success());
    let newest = KeyFile::read(&out);
    assert_ne!(newest.id(), recovered.id());

    // Both keys work; the gateway still has one administrator.
    let gw = Gateway::start_in(dir, "", sqlite_store()).await;
    for file in [&first, &recovered, &newest] {
        let token = gw.iam_token(file).await;
        let listed = gw.iam("GET", "/iam/v1/keys", Some(&token), None).await;
        assert_eq!(listed.body["keys"].as_array().unwrap().len(), 3);
    }
    gw.stop().await;

    let no_store = tempfile::tempdir().unwrap();
    let plain = no_store.path().join("gateway.toml");
    std::fs::write(
        &plain,
        "[signing]\nkey_file = \"k.pem\"\ngenerate_if_missing = true\n",
    )
    .unwrap();
    let refused = Command::new(BIN)
        .args(["iam", "bootstrap-key", "--config"])
        .arg(&plain)
        .arg("--out")
        .arg(no_store.path().join("k.json"))
        .env_remove("WIF_STORE_URL")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no [store] section"));
}
