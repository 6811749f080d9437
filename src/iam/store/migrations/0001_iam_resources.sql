-- The IAM resources, their access bindings, operations and the change log.
--
-- One text for SQLite and PostgreSQL: only types both understand (TEXT, BIGINT, INTEGER,
-- BOOLEAN), only functions both have (length), and constraints both enforce. Maps and lists
-- (labels, audiences, operation payloads) are JSON text written by the store. Times are Unix
-- seconds. Every resource row carries `version`, 1 at creation and one more at each update,
-- for optimistic concurrency.
--
-- The hierarchy cascades on delete as Yandex does: a cloud takes its folders, a folder its
-- service accounts and federations, a service account its keys, federated credentials and the
-- access bindings on it, a federation its credentials and the bindings on it.

CREATE TABLE clouds (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    organization_id TEXT    NOT NULL CHECK (length(organization_id) <= 50),
    name            TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    description     TEXT    NOT NULL CHECK (length(description) <= 256),
    labels          TEXT    NOT NULL CHECK (labels LIKE '{%}'),
    created_at      BIGINT  NOT NULL,
    version         BIGINT  NOT NULL CHECK (version >= 1),
    CONSTRAINT clouds_name_in_organization UNIQUE (organization_id, name)
);

CREATE TABLE folders (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    cloud_id    TEXT    NOT NULL REFERENCES clouds (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    description TEXT    NOT NULL CHECK (length(description) <= 256),
    labels      TEXT    NOT NULL CHECK (labels LIKE '{%}'),
    created_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    CONSTRAINT folders_name_in_cloud UNIQUE (cloud_id, name),
    -- The target of service_accounts' (folder_id, cloud_id) reference.
    CONSTRAINT folders_id_cloud UNIQUE (id, cloud_id)
);
CREATE INDEX folders_by_cloud ON folders (cloud_id, id);

-- `cloud_id` is the folder's cloud, copied at creation and kept equal by the composite
-- reference: Yandex makes a service account's name unique in its cloud, across folders.
CREATE TABLE service_accounts (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    folder_id   TEXT    NOT NULL,
    cloud_id    TEXT    NOT NULL,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    description TEXT    NOT NULL CHECK (length(description) <= 256),
    labels      TEXT    NOT NULL CHECK (labels LIKE '{%}'),
    status      TEXT    NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    created_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    CONSTRAINT service_accounts_folder FOREIGN KEY (folder_id, cloud_id)
        REFERENCES folders (id, cloud_id) ON DELETE CASCADE,
    CONSTRAINT service_accounts_name_in_cloud UNIQUE (cloud_id, name)
);
CREATE INDEX service_accounts_by_folder ON service_accounts (folder_id, id);

CREATE TABLE federations (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    folder_id   TEXT    NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    description TEXT    NOT NULL CHECK (length(description) <= 256),
    enabled     BOOLEAN NOT NULL,
    audiences   TEXT    NOT NULL CHECK (audiences LIKE '[%]'),
    issuer      TEXT    NOT NULL CHECK (length(issuer) BETWEEN 1 AND 8000),
    jwks_url    TEXT    NOT NULL CHECK (length(jwks_url) BETWEEN 1 AND 8000),
    labels      TEXT    NOT NULL CHECK (labels LIKE '{%}'),
    created_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    CONSTRAINT federations_name_in_folder UNIQUE (folder_id, name)
);
CREATE INDEX federations_by_folder ON federations (folder_id, id);

CREATE TABLE federated_credentials (
    id                  TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    service_account_id  TEXT   NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    federation_id       TEXT   NOT NULL REFERENCES federations (id) ON DELETE CASCADE,
    external_subject_id TEXT   NOT NULL CHECK (length(external_subject_id) <= 1000),
    created_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL CHECK (version >= 1),
    CONSTRAINT federated_credentials_binding
        UNIQUE (service_account_id, federation_id, external_subject_id)
);
CREATE INDEX federated_credentials_by_account ON federated_credentials (service_account_id, id);
CREATE INDEX federated_credentials_by_federation ON federated_credentials (federation_id);

-- The public half only: private keys are handed out once and never stored.
CREATE TABLE authorized_keys (
    id                 TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    service_account_id TEXT   NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    description        TEXT   NOT NULL CHECK (length(description) <= 256),
    key_algorithm      TEXT   NOT NULL CHECK (key_algorithm IN ('RSA_2048', 'RSA_4096')),
    public_key         TEXT   NOT NULL CHECK (public_key LIKE '-----BEGIN %'),
    created_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL CHECK (version >= 1)
);
CREATE INDEX authorized_keys_by_account ON authorized_keys (service_account_id, id);

-- A role granted to a subject on one resource. The resource is named twice: by
-- (resource_type, resource_id), what readers use, and by exactly one of the four reference
-- columns, so that the database refuses bindings on missing resources and deletes a binding
-- with its resource.
CREATE TABLE access_bindings (
    id                 TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    resource_type      TEXT   NOT NULL,
    resource_id        TEXT   NOT NULL,
    cloud_id           TEXT   REFERENCES clouds (id) ON DELETE CASCADE,
    folder_id          TEXT   REFERENCES folders (id) ON DELETE CASCADE,
    service_account_id TEXT   REFERENCES service_accounts (id) ON DELETE CASCADE,
    federation_id      TEXT   REFERENCES federations (id) ON DELETE CASCADE,
    role_id            TEXT   NOT NULL CHECK (length(role_id) BETWEEN 1 AND 64),
    subject_type       TEXT   NOT NULL CHECK (subject_type IN
                           ('userAccount', 'serviceAccount', 'federatedUser', 'system', 'group')),
    subject_id         TEXT   NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 100),
    created_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL CHECK (version >= 1),
    CONSTRAINT access_bindings_unique
        UNIQUE (resource_type, resource_id, role_id, subject_type, subject_id),
    CONSTRAINT access_bindings_one_resource CHECK (
        (resource_type = 'cloud' AND cloud_id = resource_id AND folder_id IS NULL
            AND service_account_id IS NULL AND federation_id IS NULL)
        OR (resource_type = 'folder' AND folder_id = resource_id AND cloud_id IS NULL
            AND service_account_id IS NULL AND federation_id IS NULL)
        OR (resource_type = 'service_account' AND service_account_id = resource_id
            AND cloud_id IS NULL AND folder_id IS NULL AND federation_id IS NULL)
        OR (resource_type = 'federation' AND federation_id = resource_id AND cloud_id IS NULL
            AND folder_id IS NULL AND service_account_id IS NULL)
    )
);
CREATE INDEX access_bindings_by_resource ON access_bindings (resource_type, resource_id, id);
CREATE INDEX access_bindings_by_subject ON access_bindings (subject_type, subject_id);
CREATE INDEX access_bindings_cloud ON access_bindings (cloud_id);
CREATE INDEX access_bindings_folder ON access_bindings (folder_id);
CREATE INDEX access_bindings_service_account ON access_bindings (service_account_id);
CREATE INDEX access_bindings_federation ON access_bindings (federation_id);

-- Yandex long-running operations. `resource_id` is the resource an operation acts on (no
-- reference: an operation outlives the resource it deleted). `response` and `error` are the
-- two arms of the result, JSON, at most one, and only once the operation is done.
CREATE TABLE operations (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 50),
    resource_id TEXT    NOT NULL CHECK (length(resource_id) <= 50),
    description TEXT    NOT NULL CHECK (length(description) <= 256),
    created_by  TEXT    NOT NULL CHECK (length(created_by) <= 100),
    created_at  BIGINT  NOT NULL,
    modified_at BIGINT  NOT NULL CHECK (modified_at >= created_at),
    done        BOOLEAN NOT NULL,
    metadata    TEXT    NOT NULL,
    response    TEXT,
    error       TEXT,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    CONSTRAINT operations_one_result CHECK (response IS NULL OR error IS NULL),
    CONSTRAINT operations_result_when_done CHECK (done OR (response IS NULL AND error IS NULL))
);
CREATE INDEX operations_by_resource ON operations (resource_id, id);

-- The change log: one row per created, updated or deleted resource (deletions that cascade
-- get a row each), numbered without gaps in commit order. `version` is the resource's
-- version after the change (for a deletion, its last one).
CREATE TABLE changes (
    seq         BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    kind        TEXT   NOT NULL CHECK (kind IN ('cloud', 'folder', 'service_account',
                    'federation', 'federated_credential', 'authorized_key', 'access_binding',
                    'operation')),
    resource_id TEXT   NOT NULL,
    op          TEXT   NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    version     BIGINT NOT NULL CHECK (version >= 1),
    at          BIGINT NOT NULL
);

-- The last sequence number handed out. Every mutation locks this one row first and holds it
-- to commit, so mutations commit one at a time, in sequence order: a reader that has seen
-- sequence n has seen every change before it.
CREATE TABLE change_counter (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL CHECK (seq >= 0)
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);
