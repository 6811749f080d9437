//! OIDC federations, federated credentials and access bindings through the IAM API: a
//! federation and credential created at the Yandex REST paths exchange at once and stop at
//! once when deleted; the field rules (issuer, audiences, subject); names unique in a folder;
//! NOT_FOUND and PERMISSION_DENIED; the grant rules of `setAccessBindings` and
//! `updateAccessBindings` (escalations refused, effective deltas, paging).

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use wif_gateway::iam::store::{NewServiceAccount, Store};
use wif_gateway::testkit::Jwt;

use crate::support::binary::{BIN, KillOnDrop, dev_config, free_port, wait_ready};
use crate::support::gateway::{Reply, form};
use crate::support::iam::{KeyFile, jwt, signer, sqlite_store};
use crate::support::*;

const FEDERATIONS: &str = "/iam/v1/workload/oidc/federations";
const CREDENTIALS: &str = "/iam/v1/workload/federatedCredentials";

/// A federation create body in `folder` named `name`, trusting an https issuer.
fn federation_body(folder: &str, name: &str) -> Value {
    json!({
        "folderId": folder,
        "name": name,
        "audiences": ["https://ci.example.com"],
        "issuer": "https://issuer.example.com",
        "jwksUrl": "https://issuer.example.com/jwks",
    })
}

/// The administrator's folder, read from the store.
async fn admin_folder(gw: &Gateway, admin: &KeyFile) -> String {
    gw.state
        .store()
        .expect("store")
        .get_service_account(admin.service_account_id())
        .await
        .unwrap()
        .folder_id
}

/// A service account in `folder`, made in the store, with a key made through the API and an
/// IAM token of it.
async fn account_with_token(
    gw: &Gateway,
    admin_token: &str,
    folder: &str,
    name: &str,
) -> (String, String) {
    let written = gw
        .state
        .store()
        .expect("store")
        .create_service_account(
            &NewServiceAccount {
                folder_id: folder.into(),
                name: name.into(),
                ..NewServiceAccount::default()
            },
            now(),
        )
        .await
        .unwrap();
    // The gateway follows its store: wait until it knows the account.
    gw.state
        .live()
        .expect("followed store")
        .caught_up_to(written.seq)
        .await;
    let id = written.item.id;
    let created = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(admin_token),
            Some(json!({"serviceAccountId": id}).to_string()),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let key = signer(
        created.body["privateKey"].as_str().unwrap(),
        created.body["key"]["id"].as_str().unwrap(),
    );
    let reply = gw.iam_token_for(&jwt(gw, &key, &id)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    (id, reply.body["iamToken"].as_str().unwrap().to_owned())
}

fn post(body: Value) -> Option<String> {
    Some(body.to_string())
}

fn sa(id: &str) -> Value {
    json!({"id": id, "type": "serviceAccount"})
}

fn delta(action: &str, role: &str, subject: Value) -> Value {
    json!({"action": action, "accessBinding": {"roleId": role, "subject": subject}})
}

/// A dev-issuer token for `subject` (audience `api-audience`) exchanged for `account`.
async fn exchange(client: &reqwest::Client, base: &str, account: &str, subject: &str) -> Reply {
    let issued: Value = client
        .post(format!("{base}/dev/issuer/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("sub={subject}&aud=api-audience"))
        .send()
        .await
        .expect("dev token")
        .json()
        .await
        .expect("json");
    let jwt = issued["id_token"].as_str().expect("id_token");
    let reply = client
        .post(format!("{base}/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(account, jwt))
        .send()
        .await
        .expect("exchange");
    Reply::from(reply).await
}

fn refused(reply: &Reply, status: u16, code: i64, what: &str) {
    assert_eq!(
        (reply.status, reply.grpc_code()),
        (status, code),
        "{what}: {}",
        reply.text
    );
}

#[tokio::test]
async fn an_api_made_federation_exchanges_at_once_and_a_deleted_credential_stops_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dev_config(dir.path());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _gateway = KillOnDrop::spawn(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(&config)
            .env_remove("WIF_STORE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let state = dir.path().join(".wif-dev");
    let admin = KeyFile::read(&state.join("admin-key.json"));
    let account = admin.service_account_id().to_owned();
    let t = now();
    let assertion = Jwt::new(
        &json!({"typ": "JWT", "alg": "PS256", "kid": admin.id()}),
        &json!({"iss": account, "aud": format!("{base}/iam/v1/tokens"), "iat": t, "exp": t + 360}),
    )
    .sign(&admin.signer());
    let call = |method: &str, path: &str, bearer: Option<&str>, body: Option<Value>| {
        let mut request = client.request(method.parse().unwrap(), format!("{base}{path}"));
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        async move { Reply::from(request.send().await.expect("gateway answers")).await }
    };
    let issued = call(
        "POST",
        "/iam/v1/tokens",
        None,
        Some(json!({"jwt": assertion})),
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let token = issued.body["iamToken"].as_str().unwrap().to_owned();
    // The administrator's folder: the gateway's own SQLite store, read.
    let store = Store::open(&format!("sqlite://{}", state.join("iam.db").display()))
        .await
        .expect("open the store");
    let folder = store.get_service_account(&account).await.unwrap().folder_id;
    store.close().await;

    let created = call(
        "POST",
        FEDERATIONS,
        Some(&token),
        Some(json!({
            "folderId": folder,
            "name": "api-made",
            "audiences": ["api-audience"],
            "issuer": format!("{base}/dev/issuer"),
            "jwksUrl": format!("{base}/dev/issuer/jwks"),
        })),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.body["done"], true);
    assert_eq!(
        created.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.Federation"
    );
    let federation = created.body["response"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["metadata"]["federationId"],
        federation.as_str()
    );
    assert_eq!(created.body["response"]["enabled"], true);

    let subject = "repo:demo/api:ref:refs/heads/main";
    let bound = call(
        "POST",
        CREDENTIALS,
        Some(&token),
        Some(
            json!({"serviceAccountId": account, "federationId": federation,
                    "externalSubjectId": subject}),
        ),
    )
    .await;
    assert_eq!(bound.status, 200, "{}", bound.text);
    assert_eq!(
        bound.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.workload.FederatedCredential"
    );
    let credential = bound.body["response"]["id"].as_str().unwrap().to_owned();

    let exchanged = exchange(&client, &base, &account, subject).await;
    assert_eq!(exchanged.status, 200, "at once: {}", exchanged.text);
    assert!(!exchanged.access_token().is_empty());

    let deleted = call(
        "DELETE",
        &format!("{CREDENTIALS}/{credential}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.body["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.workload.DeleteFederatedCredentialMetadata"
    );
    let after = exchange(&client, &base, &account, subject).await;
    assert_eq!(after.status, 400, "right after the DELETE: {}", after.text);
    let gone = call(
        "GET",
        &format!("{CREDENTIALS}/{credential}"),
        Some(&token),
        None,
    )
    .await;
    refused(&gone, 404, 5, "a deleted credential");
}

#[tokio::test]
async fn federations_and_credentials_follow_the_field_rules() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let folder = admin_folder(&gw, &admin).await;
    let account = admin.service_account_id();

    let created = gw
        .iam(
            "POST",
            FEDERATIONS,
            Some(&token),
            post(federation_body(&folder, "ci")),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let federation = created.body["response"]["id"].as_str().unwrap().to_owned();

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let with = |field: &str, value: Value| {
        let mut body = federation_body(&folder, "other");
        body[field] = value;
        body
    };
    cases.push((
        "http issuer",
        with("issuer", json!("http://issuer.example.com")),
    ));
    cases.push((
        "http loopback issuer without the setting",
        with("issuer", json!("http://127.0.0.1:9/issuer")),
    ));
    cases.push((
        "issuer not a URL",
        with("issuer", json!("issuer.example.com")),
    ));
    cases.push(("no issuer", with("issuer", json!(""))));
    cases.push((
        "http jwks",
        with("jwksUrl", json!("http://issuer.example.com/jwks")),
    ));
    cases.push(("no audiences", with("audiences", json!([]))));
    cases.push((
        "101 audiences",
        with(
            "audiences",
            json!((0..101).map(|i| format!("aud-{i}")).collect::<Vec<_>>()),
        ),
    ));
    cases.push((
        "a long audience",
        with("audiences", json!(["a".repeat(256)])),
    ));
    cases.push(("a bad name", with("name", json!("Bad_Name"))));
    cases.push(("an unknown field", with("owner", json!("me"))));
    for (name, body) in &cases {
        let reply = gw
            .iam("POST", FEDERATIONS, Some(&token), post(body.clone()))
            .await;
        refused(&reply, 400, 3, name);
    }
    let hundred = with(
        "audiences",
        json!((0..100).map(|i| format!("aud-{i}")).collect::<Vec<_>>()),
    );
    let ok = gw
        .iam("POST", FEDERATIONS, Some(&token), post(hundred))
        .await;
    assert_eq!(ok.status, 200, "100 audiences: {}", ok.text);

    let duplicate = gw
        .iam(
            "POST",
            FEDERATIONS,
            Some(&token),
            post(federation_body(&folder, "ci")),
        )
        .await;
    refused(&duplicate, 409, 6, "a name taken in the folder");

    for (name, subject) in [
        ("a subject of 1001 characters", "s".repeat(1001)),
        ("no subject", String::new()),
    ] {
        let reply = gw
            .iam(
                "POST",
                CREDENTIALS,
                Some(&token),
                post(
                    json!({"serviceAccountId": account, "federationId": federation,
                            "externalSubjectId": subject}),
                ),
            )
            .await;
        refused(&reply, 400, 3, name);
    }
    let longest = gw
        .iam(
            "POST",
            CREDENTIALS,
            Some(&token),
            post(
                json!({"serviceAccountId": account, "federationId": federation,
                        "externalSubjectId": "s".repeat(1000)}),
            ),
        )
        .await;
    assert_eq!(longest.status, 200, "{}", longest.text);
    let again = gw
        .iam(
            "POST",
            CREDENTIALS,
            Some(&token),
            post(
                json!({"serviceAccountId": account, "federationId": federation,
                        "externalSubjectId": "s".repeat(1000)}),
            ),
        )
        .await;
    refused(&again, 409, 6, "the same credential twice");
    let listed = gw
        .iam(
            "GET",
            &format!("{CREDENTIALS}?serviceAccountId={account}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body["federatedCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The issuer is fixed; the rest changes.
    let issuer = gw
        .iam(
            "PATCH",
            &format!("{FEDERATIONS}/{federation}"),
            Some(&token),
            post(json!({"updateMask": "issuer"})),
        )
        .await;
    refused(&issuer, 400, 3, "an update of the issuer");
    assert!(issuer.message().contains("issuer"), "{}", issuer.text);
    let updated = gw
        .iam(
            "PATCH",
            &format!("{FEDERATIONS}/{federation}"),
            Some(&token),
            post(
                json!({"updateMask": "audiences,disabled", "audiences": ["x", "y"],
                        "disabled": true, "description": "not in the mask"}),
            ),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let read = gw
        .iam(
            "GET",
            &format!("{FEDERATIONS}/{federation}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["audiences"], json!(["x", "y"]));
    assert_eq!(read.body["enabled"], false);
    assert_eq!(read.body["description"], "");
    assert_eq!(read.body["issuer"], "https://issuer.example.com");
    let no_audiences = gw
        .iam(
            "PATCH",
            &format!("{FEDERATIONS}/{federation}"),
            Some(&token),
            post(json!({"audiences": []})),
        )
        .await;
    refused(&no_audiences, 400, 3, "an update to no audiences");

    let listed = gw
        .iam(
            "GET",
            &format!("{FEDERATIONS}?folderId={folder}&pageSize=1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["federations"].as_array().unwrap().len(), 1);
    let next = listed.body["nextPageToken"].as_str().unwrap();
    let rest = gw
        .iam(
            "GET",
            &format!("{FEDERATIONS}?folderId={folder}&pageSize=1&pageToken={next}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(rest.body["federations"].as_array().unwrap().len(), 1);
    assert!(rest.body.get("nextPageToken").is_none(), "{}", rest.text);

    for (method, path) in [
        ("GET", format!("{FEDERATIONS}/ajenosuchfederation0")),
        ("DELETE", format!("{FEDERATIONS}/ajenosuchfederation0")),
        ("GET", format!("{CREDENTIALS}/ajenosuchcredential0")),
        ("DELETE", format!("{CREDENTIALS}/ajenosuchcredential0")),
        (
            "GET",
            format!("{FEDERATIONS}/ajenosuchfederation0:listAccessBindings"),
        ),
    ] {
        let reply = gw.iam(method, &path, Some(&token), None).await;
        refused(&reply, 404, 5, &format!("{method} {path}"));
    }
    let deleted = gw
        .iam(
            "DELETE",
            &format!("{FEDERATIONS}/{federation}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let credentials = gw
        .iam(
            "GET",
            &format!("{CREDENTIALS}?serviceAccountId={account}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        credentials.body["federatedCredentials"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "the credentials went with their federation: {}",
        credentials.text
    );
    gw.stop().await;
}

#[tokio::test]
async fn access_bindings_follow_the_grant_rules() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let folder = admin_folder(&gw, &admin).await;
    let cloud = gw
        .state
        .store()
        .unwrap()
        .get_folder(&folder)
        .await
        .unwrap()
        .cloud_id;
    let (alice, alice_token) = account_with_token(&gw, &token, &folder, "alice").await;
    let (bob, bob_token) = account_with_token(&gw, &token, &folder, "bob").await;
    let (carol, carol_token) = account_with_token(&gw, &token, &folder, "carol").await;
    let folder_path = format!("/resource-manager/v1/folders/{folder}");
    let cloud_path = format!("/resource-manager/v1/clouds/{cloud}");

    // No roles: nothing.
    for (method, path, body) in [
        ("GET", format!("{FEDERATIONS}?folderId={folder}"), None),
        (
            "POST",
            FEDERATIONS.to_owned(),
            post(federation_body(&folder, "carols")),
        ),
        ("GET", format!("{folder_path}:listAccessBindings"), None),
        (
            "POST",
            format!("{folder_path}:updateAccessBindings"),
            post(json!({"accessBindingDeltas": [delta("ADD", "admin", sa(&carol))]})),
        ),
        (
            "POST",
            CREDENTIALS.to_owned(),
            post(
                json!({"serviceAccountId": carol, "federationId": "ajenosuchfederation0",
                        "externalSubjectId": "x"}),
            ),
        ),
    ] {
        let reply = gw.iam(method, &path, Some(&carol_token), body).await;
        if path == CREDENTIALS {
            refused(&reply, 404, 5, "a credential of a missing federation");
        } else {
            refused(&reply, 403, 7, &format!("{method} {path}"));
        }
    }

    // The administrator grants: alice admin on the cloud, bob editor on the folder.
    let grants = json!({"accessBindingDeltas": [
        delta("ADD", "admin", sa(&alice)),
    ]});
    let granted = gw
        .iam(
            "POST",
            &format!("{cloud_path}:updateAccessBindings"),
            Some(&token),
            post(grants.clone()),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    assert_eq!(
        granted.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult"
    );
    assert_eq!(
        granted.body["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.access.UpdateAccessBindingsMetadata"
    );
    assert_eq!(
        granted.body["response"]["effectiveDeltas"],
        json!([delta("ADD", "admin", sa(&alice))])
    );
    let again = gw
        .iam(
            "POST",
            &format!("{cloud_path}:updateAccessBindings"),
            Some(&token),
            post(grants),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.body["response"]["effectiveDeltas"],
        json!([]),
        "an existing binding is no delta: {}",
        again.text
    );
    let editor = gw
        .iam(
            "POST",
            &format!("{folder_path}:updateAccessBindings"),
            Some(&token),
            post(json!({"accessBindingDeltas": [
                delta("ADD", "editor", sa(&bob)),
                delta("REMOVE", "viewer", sa(&bob)),
            ]})),
        )
        .await;
    assert_eq!(
        editor.body["response"]["effectiveDeltas"],
        json!([delta("ADD", "editor", sa(&bob))]),
        "removing a binding that is not there is no delta: {}",
        editor.text
    );

    // An admin cannot grant or revoke an owner role...
    let owner = gw
        .iam(
            "POST",
            &format!("{cloud_path}:updateAccessBindings"),
            Some(&alice_token),
            post(json!({"accessBindingDeltas": [
                delta("ADD", "resource-manager.clouds.owner", sa(&carol))]})),
        )
        .await;
    refused(&owner, 403, 7, "admin grants clouds.owner");
    let revoke = gw
        .iam(
            "POST",
            &format!("{cloud_path}:updateAccessBindings"),
            Some(&alice_token),
            post(json!({"accessBindingDeltas": [
                delta("REMOVE", "resource-manager.clouds.owner", sa(admin.service_account_id()))]})),
        )
        .await;
    refused(&revoke, 403, 7, "admin revokes clouds.owner");
    let replace = gw
        .iam(
            "POST",
            &format!("{cloud_path}:setAccessBindings"),
            Some(&alice_token),
            post(json!({"accessBindings": [{"roleId": "admin", "subject": sa(&alice)}]})),
        )
        .await;
    refused(&replace, 403, 7, "admin replaces the owner's binding");
    // ...but grants the rest.
    let viewer = gw
        .iam(
            "POST",
            &format!("{folder_path}:updateAccessBindings"),
            Some(&alice_token),
            post(json!({"accessBindingDeltas": [delta("ADD", "viewer", sa(&carol))]})),
        )
        .await;
    assert_eq!(viewer.status, 200, "{}", viewer.text);
    let sees = gw
        .iam(
            "GET",
            &format!("{FEDERATIONS}?folderId={folder}"),
            Some(&carol_token),
            None,
        )
        .await;
    assert_eq!(
        sees.status, 200,
        "a grant takes effect at once: {}",
        sees.text
    );

    // An editor changes no bindings.
    let by_editor = gw
        .iam(
            "POST",
            &format!("{folder_path}:setAccessBindings"),
            Some(&bob_token),
            post(json!({"accessBindings": []})),
        )
        .await;
    refused(&by_editor, 403, 7, "editor sets bindings");

    // Requests that name no valid change.
    for (name, body) in [
        (
            "an unknown role",
            json!({"accessBindingDeltas": [delta("ADD", "no.such.role", sa(&carol))]}),
        ),
        ("no deltas", json!({"accessBindingDeltas": []})),
        (
            "no action",
            json!({"accessBindingDeltas": [{"accessBinding": {"roleId": "viewer", "subject": sa(&carol)}}]}),
        ),
        (
            "a user account",
            json!({"accessBindingDeltas": [delta("ADD", "viewer", json!({"id": "u1", "type": "userAccount"}))]}),
        ),
        (
            "an owner role on a folder",
            json!({"accessBindingDeltas": [delta("ADD", "resource-manager.clouds.owner", sa(&carol))]}),
        ),
    ] {
        let reply = gw
            .iam(
                "POST",
                &format!("{folder_path}:updateAccessBindings"),
                Some(&token),
                post(body),
            )
            .await;
        refused(&reply, 400, 3, name);
    }
    let unknown_verb = gw
        .iam(
            "POST",
            &format!("{folder_path}:grantEverything"),
            Some(&token),
            post(json!({})),
        )
        .await;
    assert_eq!(unknown_verb.status, 404, "{}", unknown_verb.text);

    // Paging, and setAccessBindings replacing everything, on a service account.
    let account_path = format!("/iam/v1/serviceAccounts/{carol}");
    let roles = [
        "viewer",
        "editor",
        "auditor",
        "iam.serviceAccounts.user",
        "iam.serviceAccounts.tokenCreator",
    ];
    let set = gw
        .iam(
            "POST",
            &format!("{account_path}:setAccessBindings"),
            Some(&token),
            post(json!({"accessBindings": roles.iter().map(|r| json!({"roleId": r, "subject": sa(&bob)})).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(
        set.body["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.access.SetAccessBindingsMetadata"
    );
    assert_eq!(
        set.body["response"]["effectiveDeltas"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let mut seen = Vec::new();
    let mut token_param = String::new();
    let mut pages = 0;
    loop {
        let page = gw
            .iam(
                "GET",
                &format!("{account_path}:listAccessBindings?pageSize=2{token_param}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for b in page.body["accessBindings"].as_array().unwrap() {
            assert_eq!(b["subject"], sa(&bob));
            seen.push(b["roleId"].as_str().unwrap().to_owned());
        }
        match page.body["nextPageToken"].as_str() {
            Some(next) => token_param = format!("&pageToken={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    let mut expected: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    let replaced = gw
        .iam(
            "POST",
            &format!("{account_path}:setAccessBindings"),
            Some(&token),
            post(json!({"accessBindings": [{"roleId": "viewer", "subject": sa(&bob)},
                                            {"roleId": "viewer", "subject": {"id": "allAuthenticatedUsers", "type": "system"}}]})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let effective = replaced.body["response"]["effectiveDeltas"]
        .as_array()
        .unwrap();
    assert_eq!(effective.len(), 5, "4 removed, 1 added: {}", replaced.text);
    assert_eq!(
        effective.iter().filter(|d| d["action"] == "REMOVE").count(),
        4
    );
    let listed = gw
        .iam(
            "GET",
            &format!("{account_path}:listAccessBindings"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        listed.body["accessBindings"].as_array().unwrap().len(),
        2,
        "{}",
        listed.text
    );
    let wrong_method = gw
        .iam(
            "POST",
            &format!("{account_path}:listAccessBindings"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);
    gw.stop().await;
}
