//! Quotas per cloud, as Yandex Cloud has them (`iam.serviceAccounts.count`, …), with its
//! defaults; `[iam.quotas]` changes them. A create that would pass a quota answers
//! RESOURCE_EXHAUSTED naming the quota, its value and the cloud.
//!
//! The count is read before the write, outside its transaction: replicas creating in the same
//! cloud at the same moment can each pass the check, so a cloud may end up over its quota by
//! at most one resource per concurrent writer. Quotas bound use; they are not a security
//! boundary.

use crate::exchange::quote;

use super::ResourceKind;
use super::status::{Code, Status};
use super::store::Store;

/// A quota of a cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    ServiceAccounts,
    Federations,
    FederatedCredentials,
    AuthorizedKeys,
    AccessKeys,
    ApiKeys,
    AccessBindings,
}

impl Quota {
    pub const ALL: [Quota; 7] = [
        Quota::ServiceAccounts,
        Quota::Federations,
        Quota::FederatedCredentials,
        Quota::AuthorizedKeys,
        Quota::AccessKeys,
        Quota::ApiKeys,
        Quota::AccessBindings,
    ];

    /// The Yandex quota id.
    pub const fn id(self) -> &'static str {
        match self {
            Quota::ServiceAccounts => "iam.serviceAccounts.count",
            Quota::Federations => "iam.oidcWLIFederations.count",
            Quota::FederatedCredentials => "iam.saFederatedCredentials.count",
            Quota::AuthorizedKeys => "iam.authorizedKeys.count",
            Quota::AccessKeys => "iam.accessKeys.count",
            Quota::ApiKeys => "iam.apiKeys.count",
            Quota::AccessBindings => "iam.accessBindings.count",
        }
    }

    /// The kind of resource it counts.
    pub const fn kind(self) -> ResourceKind {
        match self {
            Quota::ServiceAccounts => ResourceKind::ServiceAccount,
            Quota::Federations => ResourceKind::Federation,
            Quota::FederatedCredentials => ResourceKind::FederatedCredential,
            Quota::AuthorizedKeys => ResourceKind::AuthorizedKey,
            Quota::AccessKeys => ResourceKind::AccessKey,
            Quota::ApiKeys => ResourceKind::ApiKey,
            Quota::AccessBindings => ResourceKind::AccessBinding,
        }
    }
}

/// The quotas of every cloud. The defaults are Yandex Cloud's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub service_accounts: u64,
    pub federations: u64,
    pub federated_credentials: u64,
    pub authorized_keys: u64,
    /// Static access keys of the cloud's service accounts.
    pub access_keys: u64,
    pub api_keys: u64,
    /// Bindings on the cloud and on everything in it.
    pub access_bindings: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            service_accounts: 100,
            federations: 50,
            federated_credentials: 200,
            authorized_keys: 1000,
            access_keys: 1000,
            api_keys: 1000,
            access_bindings: 1000,
        }
    }
}

impl Quotas {
    pub const fn limit(&self, quota: Quota) -> u64 {
        match quota {
            Quota::ServiceAccounts => self.service_accounts,
            Quota::Federations => self.federations,
            Quota::FederatedCredentials => self.federated_credentials,
            Quota::AuthorizedKeys => self.authorized_keys,
            Quota::AccessKeys => self.access_keys,
            Quota::ApiKeys => self.api_keys,
            Quota::AccessBindings => self.access_bindings,
        }
    }

    /// `Ok` if `cloud_id` has room for `adding` more resources under `quota`.
    pub async fn check(
        &self,
        store: &Store,
        quota: Quota,
        cloud_id: &str,
        adding: u64,
    ) -> Result<(), Status> {
        if adding == 0 {
            return Ok(());
        }
        let used = store
            .count_in_cloud(quota.kind(), cloud_id)
            .await
            .map_err(Status::from)?;
        exceeded(quota, self.limit(quota), cloud_id, used, adding)
    }
}

/// The refusal when `used + adding` passes `limit`.
fn exceeded(
    quota: Quota,
    limit: u64,
    cloud_id: &str,
    used: u64,
    adding: u64,
) -> Result<(), Status> {
    if used.saturating_add(adding) <= limit {
        return Ok(());
    }
    Err(Status::new(
        Code::ResourceExhausted,
        "quota_exceeded",
        format!(
            "quota {} of cloud {} is {limit} and {used} are in use: delete some first, or raise [iam.quotas]",
            quota.id(),
            quote(cloud_id)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_yandex_clouds() {
        let q = Quotas::default();
        assert_eq!(
            Quota::ALL.map(|quota| (quota.id(), q.limit(quota))),
            [
                ("iam.serviceAccounts.count", 100),
                ("iam.oidcWLIFederations.count", 50),
                ("iam.saFederatedCredentials.count", 200),
                ("iam.authorizedKeys.count", 1000),
                ("iam.accessKeys.count", 1000),
                ("iam.apiKeys.count", 1000),
                ("iam.accessBindings.count", 1000),
            ]
        );
    }

    #[test]
    fn a_quota_allows_up_to_its_limit_and_names_itself_past_it() {
        assert!(exceeded(Quota::Federations, 50, "c", 49, 1).is_ok());
        assert!(exceeded(Quota::Federations, 50, "c", 0, 50).is_ok());
        let refused = exceeded(Quota::Federations, 50, "c", 50, 1).unwrap_err();
        assert_eq!(refused.code, Code::ResourceExhausted);
        assert!(
            refused.message.contains("iam.oidcWLIFederations.count")
                && refused.message.contains("is 50")
                && refused.message.contains("\"c\""),
            "{}",
            refused.message
        );
        assert!(exceeded(Quota::AccessBindings, 1000, "c", 998, 3).is_err());
        assert!(exceeded(Quota::AccessBindings, 0, "c", 0, 1).is_err());
        assert!(exceeded(Quota::AccessBindings, 10, "c", u64::MAX, 1).is_err());
    }

    /// A store with one cloud and `accounts` service accounts in one folder.
    async fn cloud_with(accounts: usize) -> (Store, String) {
        use crate::iam::store::{NewCloud, NewFolder, NewServiceAccount};
        let store = Store::open("sqlite::memory:").await.expect("store");
        let cloud = store
            .create_cloud(
                &NewCloud {
                    organization_id: "org".into(),
                    name: "c".into(),
                    ..NewCloud::default()
                },
                0,
            )
            .await
            .unwrap()
            .item;
        let folder = store
            .create_folder(
                &NewFolder {
                    cloud_id: cloud.id.clone(),
                    name: "f".into(),
                    ..NewFolder::default()
                },
                0,
            )
            .await
            .unwrap()
            .item;
        for i in 0..accounts {
            store
                .create_service_account(
                    &NewServiceAccount {
                        folder_id: folder.id.clone(),
                        name: format!("sa-{i}"),
                        ..NewServiceAccount::default()
                    },
                    0,
                )
                .await
                .unwrap();
        }
        (store, cloud.id)
    }

    #[tokio::test]
    async fn check_counts_what_the_cloud_holds() {
        let (store, cloud) = cloud_with(2).await;
        let quotas = Quotas {
            service_accounts: 3,
            ..Quotas::default()
        };
        let check = |adding| quotas.check(&store, Quota::ServiceAccounts, &cloud, adding);
        assert!(check(1).await.is_ok(), "2 + 1 fit in 3");
        let refused = check(2).await.unwrap_err();
        assert_eq!(refused.code, Code::ResourceExhausted);
        assert!(
            refused.message.contains("2 are in use"),
            "{}",
            refused.message
        );
        // Adding nothing never fails, even past the quota.
        let none = Quotas {
            service_accounts: 0,
            ..Quotas::default()
        };
        assert!(
            none.check(&store, Quota::ServiceAccounts, &cloud, 0)
                .await
                .is_ok()
        );
        assert!(
            none.check(&store, Quota::ServiceAccounts, &cloud, 1)
                .await
                .is_err()
        );
        // Another cloud's accounts do not count.
        assert!(
            quotas
                .check(&store, Quota::ServiceAccounts, "another-cloud", 3)
                .await
                .is_ok()
        );
    }
}
