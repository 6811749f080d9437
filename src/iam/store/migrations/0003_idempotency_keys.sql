-- Idempotency keys of mutating management calls (the `Idempotency-Key` header of REST, the
-- `idempotency-key` metadata of gRPC): a call retried with the same key by the same caller is
-- answered with the operation of the first and not carried out again. `fingerprint` is the
-- SHA-256 (hex) of what the call asked for, so a key reused for another request is refused;
-- `outcome` is empty while the first call runs, then the id of its operation, or `-` when its
-- answer was not an operation (and is not kept). Rows are deleted by the upkeep a day after
-- `created_at`; they reference nothing, and no change is logged for them.
CREATE TABLE idempotency_keys (
    principal       TEXT   NOT NULL CHECK (length(principal) BETWEEN 1 AND 100),
    idempotency_key TEXT   NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 256),
    fingerprint     TEXT   NOT NULL CHECK (length(fingerprint) = 64),
    outcome         TEXT   NOT NULL CHECK (length(outcome) <= 50),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
