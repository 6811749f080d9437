-- Revoked tokens of the gateway: IAM tokens and exchanged access tokens, by `jti`, kept only
-- while the token could still be accepted (`expires_at`, Unix seconds, its `exp`); expired
-- rows are deleted in bulk by the upkeep. `subject_id` is the token's service account (no
-- reference: the row outlives a deleted account until the token expires); `revoked_by` is
-- the service account that revoked it.
CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 256),
    subject_id TEXT   NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 256),
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    revoked_by TEXT   NOT NULL CHECK (length(revoked_by) <= 100),
    version    BIGINT NOT NULL CHECK (version >= 1)
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- The change log learns the kind `revoked_token`. A CHECK cannot be altered in SQLite, so the
-- table is rebuilt with the same rows (one text for both backends). Locking the change counter
-- first, as every mutation does, keeps a gateway still running the previous version from
-- appending a change between the copy and the swap.
UPDATE change_counter SET seq = seq WHERE id = 1;
CREATE TABLE changes_v2 (
    seq         BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind        TEXT   NOT NULL CHECK (kind IN ('cloud', 'folder', 'service_account',
                    'federation', 'federated_credential', 'authorized_key', 'access_binding',
                    'operation', 'revoked_token')),
    resource_id TEXT   NOT NULL,
    op          TEXT   NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     BIGINT NOT NULL CHECK (version >= 1),
    at          BIGINT NOT NULL
);
INSERT INTO changes_v2 (seq, kind, resource_id, op, version, at)
    SELECT seq, kind, resource_id, op, version, at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v2 RENAME TO changes;
