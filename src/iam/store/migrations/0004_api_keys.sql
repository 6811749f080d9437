-- API keys of service accounts (Yandex `iam.v1.ApiKey`). The secret is handed out once and
-- never stored: `secret_hash` is its SHA-256 (lowercase hex), what a presented secret is looked
-- up by, unique so that one secret can never name two keys; `masked_secret` is `****` and the
-- secret's last 6 characters, what the API shows afterwards. `scopes` is a JSON list of scope
-- ids (empty: the key is not restricted). `expires_at` and `last_used_at` are Unix seconds,
-- NULL for a key that never expires and one never used. A key goes with its service account.
CREATE TABLE api_keys (
    id                 TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    service_account_id TEXT   NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    description        TEXT   NOT NULL CHECK (length(description) <= 256),
    secret_hash        TEXT   NOT NULL CHECK (length(secret_hash) = 64),
    masked_secret      TEXT   NOT NULL CHECK (masked_secret LIKE '****%' AND length(masked_secret) = 10),
    scopes             TEXT   NOT NULL CHECK (scopes LIKE '[%]'),
    expires_at         BIGINT,
    last_used_at       BIGINT,
    created_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL CHECK (version >= 1),
    CONSTRAINT api_keys_secret_hash UNIQUE (secret_hash)
);
CREATE INDEX api_keys_by_account ON api_keys (service_account_id, id);

-- The change log learns the kind `api_key`, the table rebuilt as 0002 did (a CHECK cannot be
-- altered in SQLite), with the change counter locked first.
UPDATE change_counter SET seq = seq WHERE id = 1;
CREATE TABLE changes_v3 (
    seq         BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind        TEXT   NOT NULL CHECK (kind IN ('cloud', 'folder', 'service_account',
                    'federation', 'federated_credential', 'authorized_key', 'access_binding',
                    'operation', 'revoked_token', 'api_key')),
    resource_id TEXT   NOT NULL,
    op          TEXT   NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     BIGINT NOT NULL CHECK (version >= 1),
    at          BIGINT NOT NULL
);
INSERT INTO changes_v3 (seq, kind, resource_id, op, version, at)
    SELECT seq, kind, resource_id, op, version, at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;
