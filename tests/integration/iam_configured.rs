//! Resources defined in the configuration files beside the IAM store: the management API shows
//! them where the caller may read their folder, refuses to change them with FAILED_PRECONDITION
//! naming the file that defines them, and a reload that drops them drops them from the API too.

use serde_json::{Value, json};

use crate::operate::wait_for;
use crate::support::gateway::{Options, Reply, account, binding, federation};
use crate::support::iam::{KeyFile, sqlite_store};
use crate::support::*;

const FED_ID: &str = "aje0filefederation01";
const SA_ID: &str = "aje0fileaccount00001";
const SUBJECT: &str = "system:serviceaccount:default:wlif";

async fn call(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    gw.iam(method, path, Some(token), body.map(|b| b.to_string()))
        .await
}

fn assert_defined_in_file(reply: &Reply, config: &std::path::Path, what: &str) {
    assert_eq!(
        (reply.status, reply.grpc_code()),
        (400, 9),
        "{what}: {}",
        reply.text
    );
    assert!(
        reply.message().contains(&config.display().to_string())
            && reply.message().contains("read-only"),
        "{what}: {}",
        reply.text
    );
}

/// The configuration's resources in `folder`, with `options` (the store).
fn resources(folder: &str) -> String {
    format!(
        "{}\nfolder_id = {folder:?}\n{}folder_id = {folder:?}\n{}",
        federation(
            FED_ID,
            "https://issuer.example",
            &["aud"],
            "jwks_url = \"https://issuer.example/jwks\""
        )
        .trim_end(),
        account(SA_ID),
        binding(FED_ID, SA_ID, SUBJECT)
    )
}

#[tokio::test]
async fn configured_resources_are_shown_and_refused_changes_naming_their_file() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let me = call(
        &gw,
        "GET",
        &format!("/iam/v1/serviceAccounts/{}", admin.service_account_id()),
        &token,
        None,
    )
    .await;
    let folder = me.body["folderId"].as_str().expect("folderId").to_owned();

    // The configuration now defines a federation, an account and a credential in the
    // administrator's folder.
    let options: Options = sqlite_store();
    gw.write_config(&resources(&folder), &options);
    let config = gw.config_path();
    wait_for("the reload", async || {
        call(
            &gw,
            "GET",
            &format!("/iam/v1/serviceAccounts/{SA_ID}"),
            &token,
            None,
        )
        .await
        .status
            == 200
    })
    .await;

    let account = call(
        &gw,
        "GET",
        &format!("/iam/v1/serviceAccounts/{SA_ID}"),
        &token,
        None,
    )
    .await;
    assert_eq!(account.body["id"], SA_ID);
    assert_eq!(account.body["folderId"], folder.as_str());
    let fed = call(
        &gw,
        "GET",
        &format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
        &token,
        None,
    )
    .await;
    assert_eq!(fed.status, 200, "{}", fed.text);
    assert_eq!(fed.body["issuer"], "https://issuer.example");
    assert_eq!(
        fed.body["jwksUrl"], "https://issuer.example/jwks",
        "{}",
        fed.text
    );
    let credentials = gw.state.directory();
    let credential_id = credentials
        .configured_credential_ids()
        .next()
        .expect("a configured credential")
        .to_owned();
    let credential = call(
        &gw,
        "GET",
        &format!("/iam/v1/workload/federatedCredentials/{credential_id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(credential.status, 200, "{}", credential.text);
    assert_eq!(credential.body["externalSubjectId"], SUBJECT);

    // Every change is refused, naming the file.
    let refusals = [
        (
            "PATCH",
            format!("/iam/v1/serviceAccounts/{SA_ID}"),
            Some(json!({"updateMask": "description", "description": "x"})),
        ),
        ("DELETE", format!("/iam/v1/serviceAccounts/{SA_ID}"), None),
        (
            "PATCH",
            format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
            Some(json!({"updateMask": "description", "description": "x"})),
        ),
        (
            "DELETE",
            format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
            None,
        ),
        (
            "DELETE",
            format!("/iam/v1/workload/federatedCredentials/{credential_id}"),
            None,
        ),
        (
            "POST",
            "/iam/v1/workload/federatedCredentials".to_owned(),
            Some(
                json!({"serviceAccountId": SA_ID, "federationId": FED_ID, "externalSubjectId": "other"}),
            ),
        ),
        (
            "POST",
            format!("/iam/v1/serviceAccounts/{SA_ID}:updateAccessBindings"),
            Some(
                json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding": {
                "roleId": "viewer",
                "subject": {"id": admin.service_account_id(), "type": "serviceAccount"}}}]}),
            ),
        ),
        (
            "POST",
            format!("/iam/v1/workload/oidc/federations/{FED_ID}:setAccessBindings"),
            Some(json!({"accessBindings": []})),
        ),
    ];
    for (method, path, body) in refusals {
        let reply = call(&gw, method, &path, &token, body).await;
        assert_defined_in_file(&reply, &config, &format!("{method} {path}"));
    }
    let bindings = call(
        &gw,
        "GET",
        &format!("/iam/v1/serviceAccounts/{SA_ID}:listAccessBindings"),
        &token,
        None,
    )
    .await;
    assert_eq!(bindings.status, 200, "{}", bindings.text);

    // Someone without a role on the folder does not see them.
    let nobody = crate::support::iam::add_account(&gw, &admin, "nobody").await;
    let key = call(
        &gw,
        "POST",
        "/iam/v1/keys",
        &token,
        Some(json!({"serviceAccountId": nobody})),
    )
    .await;
    let signer = crate::support::iam::signer(
        key.body["privateKey"].as_str().unwrap(),
        key.body["key"]["id"].as_str().unwrap(),
    );
    let reply = gw
        .iam_token_for(&crate::support::iam::jwt(&gw, &signer, &nobody))
        .await;
    let nobody_token = reply.body["iamToken"].as_str().unwrap().to_owned();
    for path in [
        format!("/iam/v1/serviceAccounts/{SA_ID}"),
        format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
    ] {
        let reply = call(&gw, "GET", &path, &nobody_token, None).await;
        assert!(matches!(reply.status, 403 | 404), "{path}: {}", reply.text);
        assert!(!reply.text.contains("issuer.example"), "{}", reply.text);
    }
    let reply = call(
        &gw,
        "DELETE",
        &format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
        &nobody_token,
        None,
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "refused before the file is named: {}",
        reply.text
    );

    // A reload without them: gone from the API.
    gw.write_config("", &options);
    wait_for("the reload", async || {
        call(
            &gw,
            "GET",
            &format!("/iam/v1/serviceAccounts/{SA_ID}"),
            &token,
            None,
        )
        .await
        .status
            == 404
    })
    .await;
    let fed = call(
        &gw,
        "GET",
        &format!("/iam/v1/workload/oidc/federations/{FED_ID}"),
        &token,
        None,
    )
    .await;
    assert_eq!(fed.status, 404, "{}", fed.text);
    gw.stop().await;
}
