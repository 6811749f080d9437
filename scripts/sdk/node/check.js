// Yandex Cloud's own Node.js SDK (@yandex-cloud/nodejs-sdk) managing the gateway over gRPC and
// TLS. The SDK takes no token endpoint of its own choosing, so it signs in with an IAM token
// and is given each service's address, as its documentation allows: a folder, a service
// account, a federation, a federated credential and a key are created, read, listed and
// deleted, access bindings updated and listed, every Operation waited on and its Any unpacked
// by type URL.
//
// Run by scripts/sdk/check.sh, which starts the gateway and sets WIF_SDK_ENDPOINT (host:port
// of the TLS listener), WIF_SDK_CA (its CA, PEM), WIF_SDK_IAM_TOKEN (an administrator's IAM
// token) and WIF_SDK_DEV_URL (the plain base URL of the gateway's dev issuer).

'use strict';

const fs = require('fs');
const { Session, waitForOperation } = require('@yandex-cloud/nodejs-sdk');
const rm = require('@yandex-cloud/nodejs-sdk/resourcemanager-v1');
const iam = require('@yandex-cloud/nodejs-sdk/iam-v1');
const access = require('@yandex-cloud/nodejs-sdk/dist/generated/yandex/cloud/access/access');

const endpoint = process.env.WIF_SDK_ENDPOINT;
const devUrl = process.env.WIF_SDK_DEV_URL.replace(/\/$/, '');
const session = new Session({
  iamToken: process.env.WIF_SDK_IAM_TOKEN,
  ssl: { rootCerts: fs.readFileSync(process.env.WIF_SDK_CA) },
});
const client = (ctor) => session.client(ctor, endpoint);

function check(condition, what) {
  if (!condition) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
}

// Waits on an Operation; its response must be `type`, named `name`, by its type URL.
async function done(operation, [type, name], what) {
  const finished = await waitForOperation(operation, session, 30000, endpoint);
  check(!finished.error, `${what}: ${JSON.stringify(finished.error)}`);
  console.log(`${what} operation ${operation.id} done`);
  if (!type) return finished;
  const url = `type.googleapis.com/${name}`;
  check(finished.response && finished.response.typeUrl === url,
    `${what}: response type URL ${finished.response && finished.response.typeUrl}, not ${url}`);
  return type.decode(finished.response.value);
}

async function main() {
  const folders = client(rm.folderService.FolderServiceClient);
  const accounts = client(iam.serviceAccountService.ServiceAccountServiceClient);
  const federations = client(iam.federationService.FederationServiceClient);
  const credentials = client(iam.federatedCredentialService.FederatedCredentialServiceClient);
  const keys = client(iam.keyService.KeyServiceClient);

  const clouds = await client(rm.cloudService.CloudServiceClient).list(
    rm.cloudService.ListCloudsRequest.fromPartial({ pageSize: 100 }));
  check(clouds.clouds.length > 0, 'a cloud is listed');
  const cloudId = clouds.clouds[0].id;

  const folder = await done(await folders.create(
    rm.folderService.CreateFolderRequest.fromPartial({ cloudId, name: 'node-folder' })),
  [rm.folder.Folder, 'yandex.cloud.resourcemanager.v1.Folder'], 'folder create');
  check((await folders.get(rm.folderService.GetFolderRequest.fromPartial({ folderId: folder.id }))).name === 'node-folder', 'folder get');

  const account = await done(await accounts.create(
    iam.serviceAccountService.CreateServiceAccountRequest.fromPartial({ folderId: folder.id, name: 'node-account' })),
  [iam.serviceAccount.ServiceAccount, 'yandex.cloud.iam.v1.ServiceAccount'], 'service account create');
  const listed = await accounts.list(iam.serviceAccountService.ListServiceAccountsRequest.fromPartial({ folderId: folder.id, pageSize: 100 }));
  check(listed.serviceAccounts.map((a) => a.id).join() === account.id, 'service account list');

  const issuer = `${devUrl}/dev/issuer`;
  const federation = await done(await federations.create(
    iam.federationService.CreateFederationRequest.fromPartial({
      folderId: folder.id, name: 'node-federation', issuer, audiences: ['node-check'], jwksUrl: `${issuer}/jwks`,
    })),
  [iam.federation.Federation, 'yandex.cloud.iam.v1.workload.oidc.Federation'], 'federation create');
  const credential = await done(await credentials.create(
    iam.federatedCredentialService.CreateFederatedCredentialRequest.fromPartial({
      serviceAccountId: account.id, federationId: federation.id, externalSubjectId: 'system:serviceaccount:node:app',
    })),
  [iam.federatedCredential.FederatedCredential, 'yandex.cloud.iam.v1.workload.FederatedCredential'],
  'federated credential create');
  check((await credentials.get(iam.federatedCredentialService.GetFederatedCredentialRequest.fromPartial({ federatedCredentialId: credential.id }))).federationId === federation.id,
    'federated credential get');

  const created = await keys.create(iam.keyService.CreateKeyRequest.fromPartial({ serviceAccountId: account.id }));
  check(created.privateKey.includes('PRIVATE KEY'), 'key create returns the private key');
  check((await keys.list(iam.keyService.ListKeysRequest.fromPartial({ serviceAccountId: account.id, pageSize: 100 }))).keys.length === 1, 'key list');

  await done(await folders.updateAccessBindings(access.UpdateAccessBindingsRequest.fromPartial({
    resourceId: folder.id,
    accessBindingDeltas: [{
      action: access.AccessBindingAction.ADD,
      accessBinding: { roleId: 'viewer', subject: { id: account.id, type: 'serviceAccount' } },
    }],
  })), [], 'folder access bindings update');
  const bindings = await folders.listAccessBindings(access.ListAccessBindingsRequest.fromPartial({ resourceId: folder.id, pageSize: 100 }));
  check(bindings.accessBindings.some((b) => b.roleId === 'viewer' && b.subject.id === account.id),
    'folder bindings listed');

  try {
    await folders.get(rm.folderService.GetFolderRequest.fromPartial({ folderId: 'b1gnosuchfolder00000' }));
    check(false, 'an unknown folder is refused');
  } catch (e) {
    check(e.code === 5, `unknown folder: code ${e.code}`);
    console.log(`unknown folder: code ${e.code} (NOT_FOUND): ${e.details}`);
  }

  await keys.delete(iam.keyService.DeleteKeyRequest.fromPartial({ keyId: created.key.id }));
  await done(await credentials.delete(iam.federatedCredentialService.DeleteFederatedCredentialRequest.fromPartial({ federatedCredentialId: credential.id })), [], 'federated credential delete');
  await done(await federations.delete(iam.federationService.DeleteFederationRequest.fromPartial({ federationId: federation.id })), [], 'federation delete');
  await done(await accounts.delete(iam.serviceAccountService.DeleteServiceAccountRequest.fromPartial({ serviceAccountId: account.id })), [], 'service account delete');
  await done(await folders.delete(rm.folderService.DeleteFolderRequest.fromPartial({ folderId: folder.id })), [], 'folder delete');
  console.log('the Node SDK check passed');
}

main().catch((e) => {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
