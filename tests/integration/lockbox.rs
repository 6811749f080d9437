//! The Kubernetes tutorial end to end, through the real gateway and the real example secret
//! service (`examples/lockbox.rs`) over HTTP: a federation trusting the cluster's issuer, a
//! service account, a federated credential for `system:serviceaccount:default:wlif` with
//! audience `ycaud`, `lockbox.payloadViewer` on the folder by `:updateAccessBindings`, the
//! tutorial's exchange, and the payload read with the access token, and again with an API key of
//! the account limited to the payload scope. Then the refusals: an account without the role
//! (403), an API key whose scope does not allow reading payloads (403), the role removed, the
//! token revoked (each within 2 s), an unknown secret (404), no or a garbage token (401).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wif_gateway::testkit::KeyKind;

use crate::support::binary::{KillOnDrop, free_port};
use crate::support::gateway::{Gateway, Options};
use crate::support::iam::{KeyFile, sqlite_store};
use crate::support::issuer::TestIssuer;

const SUBJECT: &str = "system:serviceaccount:default:wlif";
const SECRET: &str = "e6q0demosecret000001";

const LOCKBOX_ROLES: &str = r#"
[[permissions]]
id = "lockbox.secrets.getPayload"
class = "read"

[[permissions]]
id = "lockbox.secrets.get"
class = "read_metadata"

[[roles]]
id = "lockbox.payloadViewer"
permissions = ["lockbox.secrets.getPayload"]

[[api_key_scopes]]
id = "yc.lockbox.payload.read"
permissions = ["lockbox.secrets.getPayload"]

[[api_key_scopes]]
id = "yc.lockbox.metadata.read"
permissions = ["lockbox.secrets.get"]
"#;

/// The example service's binary, built beside this test by `cargo test`.
fn lockbox_binary() -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("test binary");
    let profile = deps.parent().and_then(|d| d.parent()).expect("target dir");
    profile.join("examples").join("lockbox")
}

async fn call(gw: &Gateway, method: &str, path: &str, token: &str, body: Value) -> Value {
    let reply = gw
        .iam(method, path, Some(token), Some(body.to_string()))
        .await;
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.text);
    reply.body
}

async fn grant(gw: &Gateway, admin: &str, folder: &str, action: &str, role: &str, to: &str) {
    call(
        gw,
        "POST",
        &format!("/resource-manager/v1/folders/{folder}:updateAccessBindings"),
        admin,
        json!({"accessBindingDeltas": [{"action": action, "accessBinding": {
            "roleId": role, "subject": {"id": to, "type": "serviceAccount"}}}]}),
    )
    .await;
}

/// `GET /lockbox/v1/secrets/{id}/payload` with `token`: (status, body).
async fn read(base: &str, secret: &str, token: Option<&str>) -> (u16, Value) {
    read_as(base, secret, token.map(|t| format!("Bearer {t}"))).await
}

/// `GET /lockbox/v1/secrets/{id}/payload` with `authorization` as the whole header value.
async fn read_as(base: &str, secret: &str, authorization: Option<String>) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().get(format!("{base}/lockbox/v1/secrets/{secret}/payload"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let reply = request.send().await.expect("lockbox answers");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// Waits up to 2 s for `read` to answer `status`; how long it took.
async fn within_2s(base: &str, token: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let (got, body) = read(base, SECRET, Some(token)).await;
        if got == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {got} after 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_tutorial_reads_a_lockbox_secret_and_refusals_follow_roles_and_revocation() {
    let (cluster, cluster_key) = TestIssuer::with_key(KeyKind::Rs256, "k8s").await;
    let mut options: Options = sqlite_store();
    options.iam.push_str("\nallow_http_to_loopback = true");
    let gw = Gateway::start_with(LOCKBOX_ROLES, options).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let me = gw
        .iam(
            "GET",
            &format!("/iam/v1/serviceAccounts/{}", admin.service_account_id()),
            Some(&admin_token),
            None,
        )
        .await;
    let folder = me.body["folderId"].as_str().unwrap().to_owned();

    // The secret service: its own account, allowed to ask the gateway, and its key file.
    let service = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &admin_token,
        json!({"folderId": folder, "name": "lockbox"}),
    )
    .await["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    grant(
        &gw,
        &admin_token,
        &folder,
        "ADD",
        "iam.accessService.authorizer",
        &service,
    )
    .await;
    let key = call(
        &gw,
        "POST",
        "/iam/v1/keys",
        &admin_token,
        json!({"serviceAccountId": service}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("lockbox-key.json");
    std::fs::write(
        &key_file,
        json!({"id": key["key"]["id"], "service_account_id": service,
               "private_key": key["privateKey"]})
        .to_string(),
    )
    .unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        format!(
            "[[secrets]]\nid = \"{SECRET}\"\nfolder_id = \"{folder}\"\nversion_id = \"e6q8demoversion00001\"\n\
             [[secrets.entries]]\nkey = \"secret\"\ntext_value = \"hunter2\"\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _lockbox = KillOnDrop::spawn(
        Command::new(lockbox_binary())
            .args([
                "--gateway",
                &gw.url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--secrets")
            .arg(&secrets)
            .arg("--key-file")
            .arg(&key_file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    );
    let started = Instant::now();
    while reqwest::get(format!("{base}/")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "lockbox did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The tutorial: federation, service account, federated credential, role on the folder.
    let federation = call(
        &gw,
        "POST",
        "/iam/v1/workload/oidc/federations",
        &admin_token,
        json!({"folderId": folder, "name": "k8s-cluster", "issuer": cluster.issuer(),
               "audiences": ["ycaud"], "jwksUrl": cluster.jwks_url()}),
    )
    .await["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut accounts = Vec::new();
    for (name, subject) in [
        ("wlif", SUBJECT),
        ("no-role", "system:serviceaccount:default:other"),
    ] {
        let account = call(
            &gw,
            "POST",
            "/iam/v1/serviceAccounts",
            &admin_token,
            json!({"folderId": folder, "name": name}),
        )
        .await["response"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        call(
            &gw,
            "POST",
            "/iam/v1/workload/federatedCredentials",
            &admin_token,
            json!({"serviceAccountId": account, "federationId": federation,
                   "externalSubjectId": subject}),
        )
        .await;
        accounts.push((account, subject));
    }
    let (wlif, _) = &accounts[0];
    grant(
        &gw,
        &admin_token,
        &folder,
        "ADD",
        "lockbox.payloadViewer",
        wlif,
    )
    .await;

    // The pod's token, exchanged with the tutorial's request, reads the secret.
    let exchange = |account: String, subject: &'static str| {
        let token = cluster.token(&cluster_key, subject, "ycaud");
        let gw = &gw;
        async move {
            let reply = gw.exchange(&account, &token).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.access_token().to_owned()
        }
    };
    let iam_token = exchange(accounts[0].0.clone(), SUBJECT).await;
    let (status, body) = read(&base, SECRET, Some(&iam_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"entries": [{"key": "secret", "textValue": "hunter2"}],
               "versionId": "e6q8demoversion00001"})
    );

    // Refusals, with Yandex bodies.
    let (status, body) = read(&base, "e6q0nosuchsecret0001", Some(&iam_token)).await;
    assert_eq!((status, &body["code"]), (404, &json!(5)), "{body}");
    let (status, body) = read(&base, SECRET, None).await;
    assert_eq!((status, &body["code"]), (401, &json!(16)), "{body}");
    let (status, body) = read(&base, SECRET, Some("not-a-token")).await;
    assert_eq!((status, &body["code"]), (401, &json!(16)), "{body}");
    let other = exchange(accounts[1].0.clone(), "system:serviceaccount:default:other").await;
    let (status, body) = read(&base, SECRET, Some(&other)).await;
    assert_eq!((status, &body["code"]), (403, &json!(7)), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lockbox.secrets.getPayload"),
        "{body}"
    );

    // An API key of the same account, limited to reading payloads, reads it too; one limited to
    // reading metadata is refused by its scope, whatever the account's roles.
    let api_key = |scope: &str| {
        call(
            &gw,
            "POST",
            "/iam/v1/apiKeys",
            &admin_token,
            json!({"serviceAccountId": wlif, "scopes": [scope]}),
        )
    };
    let reader = api_key("yc.lockbox.payload.read").await;
    let (status, body) = read_as(
        &base,
        SECRET,
        Some(format!("Api-Key {}", reader["secret"].as_str().unwrap())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entries"][0]["textValue"], "hunter2", "{body}");
    let narrow = api_key("yc.lockbox.metadata.read").await;
    let (status, body) = read_as(
        &base,
        SECRET,
        Some(format!("Api-Key {}", narrow["secret"].as_str().unwrap())),
    )
    .await;
    assert_eq!((status, &body["code"]), (403, &json!(7)), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("yc.lockbox.metadata.read")
            && message.contains(narrow["apiKey"]["id"].as_str().unwrap()),
        "{body}"
    );

    // Removing the role stops access; granting it again restores it.
    grant(
        &gw,
        &admin_token,
        &folder,
        "REMOVE",
        "lockbox.payloadViewer",
        wlif,
    )
    .await;
    let took = within_2s(&base, &iam_token, 403).await;
    eprintln!("role removed: refused after {took:?}");
    grant(
        &gw,
        &admin_token,
        &folder,
        "ADD",
        "lockbox.payloadViewer",
        wlif,
    )
    .await;
    within_2s(&base, &iam_token, 200).await;

    // Revoking the token stops it.
    call(
        &gw,
        "POST",
        "/iam/v1/tokens:revoke",
        &admin_token,
        json!({"iamToken": iam_token}),
    )
    .await;
    let took = within_2s(&base, &iam_token, 401).await;
    eprintln!("token revoked: refused after {took:?}");
    let fresh = exchange(accounts[0].0.clone(), SUBJECT).await;
    assert_eq!(read(&base, SECRET, Some(&fresh)).await.0, 200);
    gw.stop().await;
}
