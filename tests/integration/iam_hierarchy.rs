//! The resource hierarchy at its Yandex REST paths: folders, service accounts and clouds
//! round trip (create, get, list page by page, update, delete), every refusal with its code
//! (INVALID_ARGUMENT for the field rules and masks, NOT_FOUND, ALREADY_EXISTS,
//! PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED), and `GET /operations/{id}`.

use serde_json::{Value, json};
use wif_gateway::iam::store::NewServiceAccount;

use crate::support::gateway::Reply;
use crate::support::iam::{KeyFile, jwt, signer, sqlite_store};
use crate::support::*;

/// A gateway with a fresh store, and an IAM token of its bootstrap administrator.
async fn start() -> (Gateway, KeyFile, String) {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    (gw, admin, token)
}

async fn call(gw: &Gateway, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    gw.iam(method, path, Some(token), body.map(|b| b.to_string()))
        .await
}

/// The refusal's HTTP status and gRPC code, and a part of its message.
fn assert_refused(reply: &Reply, status: u16, code: i64, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.grpc_code(), code, "{}", reply.text);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or("")
            .contains(message),
        "{message:?} not in {}",
        reply.text
    );
    assert_eq!(reply.body["details"], json!([]), "{}", reply.text);
}

/// A finished operation's response, after checking its types.
fn response_of(reply: &Reply, metadata: &str, response: &str) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["done"], true, "{}", reply.text);
    assert_eq!(
        reply.body["metadata"]["@type"],
        format!("type.googleapis.com/{metadata}"),
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["response"]["@type"],
        format!("type.googleapis.com/{response}"),
        "{}",
        reply.text
    );
    let mut message = reply.body["response"].clone();
    message.as_object_mut().unwrap().remove("@type");
    message
}

/// The administrator's folder and cloud.
async fn home(gw: &Gateway, admin: &KeyFile) -> (String, String) {
    let account = gw
        .state
        .store()
        .unwrap()
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    (account.folder_id, account.cloud_id)
}

/// Every item of a list, walked with `pageSize=1`: each page one item, a token while more follow.
async fn walk(gw: &Gateway, token: &str, path: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    for _ in 0..20 {
        let reply = call(
            gw,
            "GET",
            &format!("{path}&pageSize=1&pageToken={page_token}"),
            token,
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.body[field].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= 1, "{}", reply.text);
        items.extend(page);
        match reply.body["nextPageToken"].as_str() {
            Some(next) => next.clone_into(&mut page_token),
            None => return items,
        }
    }
    panic!("the list never ended");
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn folders_round_trip_and_their_operations_can_be_read_again() {
    let (gw, admin, token) = start().await;
    let (home_folder, cloud) = home(&gw, &admin).await;
    let created = call(
        &gw,
        "POST",
        "/resource-manager/v1/folders",
        &token,
        Some(
            json!({"cloudId": cloud, "name": "staging", "description": "pre-production",
                    "labels": {"env": "staging"}}),
        ),
    )
    .await;
    let folder = response_of(
        &created,
        "yandex.cloud.resourcemanager.v1.CreateFolderMetadata",
        "yandex.cloud.resourcemanager.v1.Folder",
    );
    let id = folder["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["metadata"]["folderId"], id.as_str());
    assert_eq!(folder["cloudId"], cloud.as_str());
    assert_eq!(folder["name"], "staging");
    assert_eq!(folder["labels"], json!({"env": "staging"}));
    assert_eq!(folder["status"], "ACTIVE");

    let operation = call(
        &gw,
        "GET",
        &format!("/operations/{}", created.body["id"].as_str().unwrap()),
        &token,
        None,
    )
    .await;
    assert_eq!(operation.status, 200, "{}", operation.text);
    assert_eq!(operation.body, created.body, "the same operation, polled");

    let got = call(
        &gw,
        "GET",
        &format!("/resource-manager/v1/folders/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body, folder);

    let listed = walk(
        &gw,
        &token,
        &format!("/resource-manager/v1/folders?cloudId={cloud}"),
        "folders",
    )
    .await;
    let mut expected = vec![home_folder.clone(), id.clone()];
    expected.sort();
    assert_eq!(ids(&listed), expected);
    let by_name = call(
        &gw,
        "GET",
        &format!("/resource-manager/v1/folders?cloudId={cloud}&filter=name%3D%22staging%22"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        ids(by_name.body["folders"].as_array().unwrap()),
        std::slice::from_ref(&id)
    );

    let updated = call(
        &gw,
        "PATCH",
        &format!("/resource-manager/v1/folders/{id}"),
        &token,
        Some(json!({"updateMask": "name,labels", "name": "qa", "description": "ignored"})),
    )
    .await;
    let folder = response_of(
        &updated,
        "yandex.cloud.resourcemanager.v1.UpdateFolderMetadata",
        "yandex.cloud.resourcemanager.v1.Folder",
    );
    assert_eq!(folder["name"], "qa");
    assert_eq!(folder["description"], "pre-production", "not in the mask");
    assert_eq!(folder["labels"], json!({}), "in the mask, absent: reset");

    let deleted = call(
        &gw,
        "DELETE",
        &format!("/resource-manager/v1/folders/{id}"),
        &token,
        None,
    )
    .await;
    response_of(
        &deleted,
        "yandex.cloud.resourcemanager.v1.DeleteFolderMetadata",
        "google.protobuf.Empty",
    );
    let gone = call(
        &gw,
        "GET",
        &format!("/resource-manager/v1/folders/{id}"),
        &token,
        None,
    )
    .await;
    assert_refused(&gone, 404, 5, "not found");
    gw.stop().await;
}

#[tokio::test]
async fn service_accounts_round_trip_with_unique_names_in_their_cloud() {
    let (gw, admin, token) = start().await;
    let (folder, cloud) = home(&gw, &admin).await;
    let mut created_ids = vec![admin.service_account_id().to_owned()];
    for name in ["deployer", "reader"] {
        let created = call(
            &gw,
            "POST",
            "/iam/v1/serviceAccounts",
            &token,
            Some(json!({"folder_id": folder, "name": name})),
        )
        .await;
        let account = response_of(
            &created,
            "yandex.cloud.iam.v1.CreateServiceAccountMetadata",
            "yandex.cloud.iam.v1.ServiceAccount",
        );
        assert_eq!(account["folderId"], folder.as_str());
        assert_eq!(account["status"], "ACTIVE");
        assert_eq!(
            created.body["metadata"]["serviceAccountId"],
            account["id"].clone()
        );
        created_ids.push(account["id"].as_str().unwrap().to_owned());
    }
    created_ids.sort();
    let listed = walk(
        &gw,
        &token,
        &format!("/iam/v1/serviceAccounts?folderId={folder}"),
        "serviceAccounts",
    )
    .await;
    assert_eq!(ids(&listed), created_ids);

    // The name is unique in the cloud, across its folders.
    let other = call(
        &gw,
        "POST",
        "/resource-manager/v1/folders",
        &token,
        Some(json!({"cloudId": cloud, "name": "other"})),
    )
    .await;
    let other = other.body["response"]["id"].as_str().unwrap().to_owned();
    let duplicate = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": other, "name": "deployer"})),
    )
    .await;
    assert_refused(&duplicate, 409, 6, "already exists");

    let deployer = listed.iter().find(|a| a["name"] == "deployer").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/iam/v1/serviceAccounts/{deployer}");
    let updated = call(
        &gw,
        "PATCH",
        &path,
        &token,
        Some(
            json!({"update_mask": "description,labels", "description": "CI",
                    "labels": {"team": "platform"}}),
        ),
    )
    .await;
    let account = response_of(
        &updated,
        "yandex.cloud.iam.v1.UpdateServiceAccountMetadata",
        "yandex.cloud.iam.v1.ServiceAccount",
    );
    assert_eq!(account["name"], "deployer");
    assert_eq!(account["description"], "CI");
    assert_eq!(account["labels"], json!({"team": "platform"}));
    let renamed = call(
        &gw,
        "PATCH",
        &path,
        &token,
        Some(json!({"updateMask": "name", "name": "reader"})),
    )
    .await;
    assert_refused(&renamed, 409, 6, "already exists");

    let got = call(&gw, "GET", &path, &token, None).await;
    assert_eq!(got.body, account);
    let deleted = call(&gw, "DELETE", &path, &token, None).await;
    response_of(
        &deleted,
        "yandex.cloud.iam.v1.DeleteServiceAccountMetadata",
        "google.protobuf.Empty",
    );
    assert_refused(
        &call(&gw, "GET", &path, &token, None).await,
        404,
        5,
        "not found",
    );
    assert_refused(
        &call(&gw, "DELETE", &path, &token, None).await,
        404,
        5,
        "not found",
    );
    gw.stop().await;
}

#[tokio::test]
async fn clouds_are_listed_read_updated_and_deleted_but_created_only_with_a_role_on_the_organization()
 {
    let (gw, admin, token) = start().await;
    let (_, cloud) = home(&gw, &admin).await;
    let listed = walk(
        &gw,
        &token,
        "/resource-manager/v1/clouds?organizationId=",
        "clouds",
    )
    .await;
    assert_eq!(ids(&listed), std::slice::from_ref(&cloud));
    // A cloud the administrator holds no role on is not listed, and not readable.
    let hidden = gw
        .state
        .store()
        .unwrap()
        .create_cloud(
            &wif_gateway::iam::store::NewCloud {
                organization_id: "org1".into(),
                name: "hidden".into(),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap()
        .item;
    let listed = call(&gw, "GET", "/resource-manager/v1/clouds", &token, None).await;
    assert_eq!(
        ids(listed.body["clouds"].as_array().unwrap()),
        std::slice::from_ref(&cloud)
    );
    let denied = call(
        &gw,
        "GET",
        &format!("/resource-manager/v1/clouds/{}", hidden.id),
        &token,
        None,
    )
    .await;
    assert_refused(&denied, 403, 7, "resource-manager.clouds.get");

    let create = call(
        &gw,
        "POST",
        "/resource-manager/v1/clouds",
        &token,
        Some(json!({"organizationId": "org1", "name": "second"})),
    )
    .await;
    assert_refused(&create, 403, 7, "resource-manager.clouds.create");

    let path = format!("/resource-manager/v1/clouds/{cloud}");
    let got = call(&gw, "GET", &path, &token, None).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["name"], "default");
    let updated = call(
        &gw,
        "PATCH",
        &path,
        &token,
        Some(json!({"updateMask": "name,description", "name": "main"})),
    )
    .await;
    let updated_cloud = response_of(
        &updated,
        "yandex.cloud.resourcemanager.v1.UpdateCloudMetadata",
        "yandex.cloud.resourcemanager.v1.Cloud",
    );
    assert_eq!(updated_cloud["name"], "main");
    assert_eq!(updated_cloud["description"], "");
    assert_eq!(
        updated_cloud["labels"], got.body["labels"],
        "not in the mask"
    );

    // Deleting the cloud deletes everything in it, the administrator too.
    let deleted = call(&gw, "DELETE", &path, &token, None).await;
    response_of(
        &deleted,
        "yandex.cloud.resourcemanager.v1.DeleteCloudMetadata",
        "google.protobuf.Empty",
    );
    let after = call(&gw, "GET", &path, &token, None).await;
    assert_refused(&after, 401, 16, "not a service account of the IAM store");
    gw.stop().await;
}

#[tokio::test]
async fn requests_that_break_a_field_rule_are_invalid_arguments() {
    let (gw, admin, token) = start().await;
    let (folder, cloud) = home(&gw, &admin).await;
    let account = admin.service_account_id();
    let cases: Vec<(&str, &str, String, Value, &str)> = vec![
        (
            "upper-case name",
            "POST",
            "/iam/v1/serviceAccounts".into(),
            json!({"folderId": folder, "name": "Deployer"}),
            "must match [a-z]",
        ),
        (
            "no name",
            "POST",
            "/resource-manager/v1/folders".into(),
            json!({"cloudId": cloud}),
            "name is required",
        ),
        (
            "name ending with a hyphen",
            "POST",
            "/resource-manager/v1/folders".into(),
            json!({"cloudId": cloud, "name": "qa-"}),
            "must match [a-z]",
        ),
        (
            "no folder",
            "POST",
            "/iam/v1/serviceAccounts".into(),
            json!({"name": "deployer"}),
            "folder_id is required",
        ),
        (
            "a 257-character description",
            "POST",
            "/iam/v1/serviceAccounts".into(),
            json!({"folderId": folder, "name": "a", "description": "d".repeat(257)}),
            "at most 256 characters",
        ),
        (
            "a label key with upper case",
            "POST",
            "/iam/v1/serviceAccounts".into(),
            json!({"folderId": folder, "name": "a", "labels": {"Env": "x"}}),
            "label key",
        ),
        (
            "an unknown field",
            "POST",
            "/iam/v1/serviceAccounts".into(),
            json!({"folderId": folder, "name": "a", "color": "red"}),
            "unknown field `color`",
        ),
        (
            "a mask path that cannot be updated",
            "PATCH",
            format!("/iam/v1/serviceAccounts/{account}"),
            json!({"updateMask": "folderId"}),
            "updateMask names \"folderId\"",
        ),
        (
            "an unknown mask path",
            "PATCH",
            format!("/resource-manager/v1/folders/{folder}"),
            json!({"updateMask": "name,color", "name": "x"}),
            "updateMask names \"color\"",
        ),
        (
            "a bad name in an update",
            "PATCH",
            format!("/resource-manager/v1/clouds/{cloud}"),
            json!({"updateMask": "name", "name": "9lives"}),
            "must match [a-z]",
        ),
    ];
    let mut failures = Vec::new();
    for (name, method, path, body, message) in &cases {
        let reply = call(&gw, method, path, &token, Some(body.clone())).await;
        if reply.status != 400
            || reply.grpc_code() != 3
            || !reply.body["message"]
                .as_str()
                .unwrap_or("")
                .contains(message)
            || reply.body["details"] != json!([])
        {
            failures.push(format!("{name}: {} {}", reply.status, reply.text));
        }
    }
    for (name, path) in [
        (
            "a page size above 1000",
            format!("/iam/v1/serviceAccounts?folderId={folder}&pageSize=1001"),
        ),
        (
            "a page token not issued",
            format!("/iam/v1/serviceAccounts?folderId={folder}&pageToken=forged"),
        ),
        (
            "a filter other than by name",
            format!("/resource-manager/v1/folders?cloudId={cloud}&filter=id%3D%22x%22"),
        ),
        (
            "a list without its parent",
            "/resource-manager/v1/folders".to_owned(),
        ),
    ] {
        let reply = call(&gw, "GET", &path, &token, None).await;
        if reply.status != 400 || reply.grpc_code() != 3 {
            failures.push(format!("{name}: {} {}", reply.status, reply.text));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    gw.stop().await;
}

#[tokio::test]
async fn missing_resources_are_not_found() {
    let (gw, _, token) = start().await;
    for path in [
        "/iam/v1/serviceAccounts/ajenosuchaccount0001",
        "/resource-manager/v1/folders/b1gnosuchfolder00001",
        "/resource-manager/v1/clouds/b1gnosuchcloud000001",
        "/iam/v1/serviceAccounts?folderId=b1gnosuchfolder00001",
        "/operations/ajenosuchoperation01",
    ] {
        let reply = call(&gw, "GET", path, &token, None).await;
        assert_refused(&reply, 404, 5, "not found");
    }
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": "b1gnosuchfolder00001", "name": "a"})),
    )
    .await;
    assert_refused(&reply, 404, 5, "folder \"b1gnosuchfolder00001\" not found");
    gw.stop().await;
}

#[tokio::test]
async fn callers_without_roles_are_denied_and_callers_without_tokens_unauthenticated() {
    let (gw, admin, token) = start().await;
    let (folder, cloud) = home(&gw, &admin).await;
    let created = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": folder, "name": "nobody"})),
    )
    .await;
    let nobody = created.body["response"]["id"].as_str().unwrap().to_owned();
    let key = call(
        &gw,
        "POST",
        "/iam/v1/keys",
        &token,
        Some(json!({"serviceAccountId": nobody})),
    )
    .await;
    assert_eq!(key.status, 200, "{}", key.text);
    let signing = signer(
        key.body["privateKey"].as_str().unwrap(),
        key.body["key"]["id"].as_str().unwrap(),
    );
    let reply = gw.iam_token_for(&jwt(&gw, &signing, &nobody)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let weak = reply.body["iamToken"].as_str().unwrap().to_owned();

    let admin_account = admin.service_account_id();
    let cases: Vec<(&str, String, Option<Value>, &str)> = vec![
        (
            "GET",
            format!("/iam/v1/serviceAccounts/{admin_account}"),
            None,
            "iam.serviceAccounts.get",
        ),
        (
            "GET",
            format!("/iam/v1/serviceAccounts?folderId={folder}"),
            None,
            "iam.serviceAccounts.list",
        ),
        (
            "POST",
            "/iam/v1/serviceAccounts".into(),
            Some(json!({"folderId": folder, "name": "mine"})),
            "iam.serviceAccounts.create",
        ),
        (
            "PATCH",
            format!("/iam/v1/serviceAccounts/{nobody}"),
            Some(json!({"updateMask": "description", "description": "x"})),
            "iam.serviceAccounts.update",
        ),
        (
            "DELETE",
            format!("/iam/v1/serviceAccounts/{admin_account}"),
            None,
            "iam.serviceAccounts.delete",
        ),
        (
            "POST",
            "/resource-manager/v1/folders".into(),
            Some(json!({"cloudId": cloud, "name": "mine"})),
            "resource-manager.folders.create",
        ),
        (
            "DELETE",
            format!("/resource-manager/v1/folders/{folder}"),
            None,
            "resource-manager.folders.delete",
        ),
        (
            "GET",
            format!("/resource-manager/v1/clouds/{cloud}"),
            None,
            "resource-manager.clouds.get",
        ),
        (
            "GET",
            format!("/operations/{}", created.body["id"].as_str().unwrap()),
            None,
            "iam.serviceAccounts.get",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, permission) in &cases {
        let reply = call(&gw, method, path, &weak, body.clone()).await;
        if reply.status != 403 || reply.grpc_code() != 7 || !reply.text.contains(permission) {
            failures.push(format!("{method} {path}: {} {}", reply.status, reply.text));
        }
        let anonymous = gw
            .iam(method, path, None, body.as_ref().map(Value::to_string))
            .await;
        if anonymous.status != 401 || anonymous.grpc_code() != 16 {
            failures.push(format!(
                "{method} {path} without a token: {} {}",
                anonymous.status, anonymous.text
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let clouds = call(&gw, "GET", "/resource-manager/v1/clouds", &weak, None).await;
    assert_eq!(clouds.status, 200, "{}", clouds.text);
    assert_eq!(clouds.body["clouds"], json!([]), "only the visible clouds");
    gw.stop().await;
}

#[tokio::test]
async fn service_accounts_beyond_the_cloud_quota_are_resource_exhausted() {
    let (gw, admin, token) = start().await;
    let (folder, _) = home(&gw, &admin).await;
    let store = gw.state.store().unwrap();
    // The administrator is the first; fill the quota of 100.
    for i in 1..100 {
        store
            .create_service_account(
                &NewServiceAccount {
                    folder_id: folder.clone(),
                    name: format!("filler-{i}"),
                    ..NewServiceAccount::default()
                },
                now(),
            )
            .await
            .unwrap();
    }
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": folder, "name": "one-too-many"})),
    )
    .await;
    assert_refused(&reply, 429, 8, "iam.serviceAccounts.count");
    gw.stop().await;
}

#[tokio::test]
async fn every_quota_is_configurable_and_answered_resource_exhausted() {
    // One more than the bootstrap holds of each: its account, its key, its binding.
    let mut options = sqlite_store();
    options.iam.push_str(
        "\nquotas = { service_accounts = 2, federations = 1, federated_credentials = 1, \
         authorized_keys = 2, access_bindings = 2 }",
    );
    let gw = Gateway::start_with("", options).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let (folder, _) = home(&gw, &admin).await;
    let me = admin.service_account_id();

    let created = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": folder, "name": "second"})),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/serviceAccounts",
        &token,
        Some(json!({"folderId": folder, "name": "third"})),
    )
    .await;
    assert_refused(&reply, 429, 8, "iam.serviceAccounts.count of cloud");

    let key = json!({"serviceAccountId": me});
    let reply = call(&gw, "POST", "/iam/v1/keys", &token, Some(key.clone())).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = call(&gw, "POST", "/iam/v1/keys", &token, Some(key)).await;
    assert_refused(&reply, 429, 8, "iam.authorizedKeys.count");

    let federation = |name: &str| {
        json!({"folderId": folder, "name": name, "issuer": "https://issuer.example",
               "audiences": ["aud"], "jwksUrl": "https://issuer.example/jwks"})
    };
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/workload/oidc/federations",
        &token,
        Some(federation("first")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let federation_id = reply.body["response"]["id"].as_str().unwrap().to_owned();
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/workload/oidc/federations",
        &token,
        Some(federation("second")),
    )
    .await;
    assert_refused(&reply, 429, 8, "iam.oidcWLIFederations.count");

    let credential = |subject: &str| json!({"serviceAccountId": me, "federationId": federation_id, "externalSubjectId": subject});
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/workload/federatedCredentials",
        &token,
        Some(credential("a")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = call(
        &gw,
        "POST",
        "/iam/v1/workload/federatedCredentials",
        &token,
        Some(credential("b")),
    )
    .await;
    assert_refused(&reply, 429, 8, "iam.saFederatedCredentials.count");

    let grant = |role: &str| {
        json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding": {
            "roleId": role, "subject": {"id": me, "type": "serviceAccount"}}}]})
    };
    let path = format!("/resource-manager/v1/folders/{folder}:updateAccessBindings");
    let reply = call(&gw, "POST", &path, &token, Some(grant("viewer"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = call(&gw, "POST", &path, &token, Some(grant("editor"))).await;
    assert_refused(&reply, 429, 8, "iam.accessBindings.count");
    gw.stop().await;
}
