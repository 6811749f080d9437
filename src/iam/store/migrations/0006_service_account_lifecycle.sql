-- The lifecycle of service accounts and the use of their keys.
--
-- `suspended_until`: when a suspension given an end (`SuspendServiceAccountRequest.expires_at`)
-- lifts; the upkeep reactivates the account then. NULL while active, or suspended until
-- reactivated.
--
-- `last_authenticated_at` and `last_used_at` are written in batches by the usage recorder, not
-- by the mutations: they bump no version and log no change (nobody decides anything by them),
-- and a later time never gives way to an earlier one.
ALTER TABLE service_accounts ADD COLUMN suspended_until BIGINT;
ALTER TABLE service_accounts ADD COLUMN last_authenticated_at BIGINT;
ALTER TABLE authorized_keys ADD COLUMN last_used_at BIGINT;
