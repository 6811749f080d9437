-- Static access keys (AWS-compatible) of service accounts. `key_id` is the public access key
-- id a client names in its signatures (`YC…`, 25 characters); the secret is kept only sealed
-- (AES-256-GCM under a key of `[iam] secret_keys`, `<sealing key id>:<base64url of nonce,
-- ciphertext and tag>`), because verifying a signature needs it, and never in plain text.
-- `last_used_at` stays NULL until the key is first used.
CREATE TABLE access_keys (
    id                 TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    service_account_id TEXT   NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    description        TEXT   NOT NULL CHECK (length(description) <= 256),
    key_id             TEXT   NOT NULL UNIQUE CHECK (length(key_id) = 25 AND key_id LIKE 'YC%'),
    secret_sealed      TEXT   NOT NULL CHECK (length(secret_sealed) BETWEEN 3 AND 512
                                  AND secret_sealed LIKE '_%:_%'),
    last_used_at       BIGINT,
    created_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL CHECK (version >= 1)
);
CREATE INDEX access_keys_by_account ON access_keys (service_account_id, id);

-- The change log learns the kinds `api_key` and `access_key`; the table is rebuilt as
-- 0002_revoked_tokens.sql rebuilt it, the change counter locked first.
UPDATE change_counter SET seq = seq WHERE id = 1;
CREATE TABLE changes_v3 (
    seq         BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind        TEXT   NOT NULL CHECK (kind IN ('cloud', 'folder', 'service_account',
                    'federation', 'federated_credential', 'authorized_key', 'access_binding',
                    'operation', 'revoked_token', 'api_key', 'access_key')),
    resource_id TEXT   NOT NULL,
    op          TEXT   NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     BIGINT NOT NULL CHECK (version >= 1),
    at          BIGINT NOT NULL
);
INSERT INTO changes_v3 (seq, kind, resource_id, op, version, at)
    SELECT seq, kind, resource_id, op, version, at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;
