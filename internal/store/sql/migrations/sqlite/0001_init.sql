-- 0001_init: the first mcpauth schema.
--
-- Times are INTEGER microseconds since the Unix epoch (UTC); NULL means
-- "not set" (a zero time.Time). Codes, refresh tokens, session ids and DCR
-- client secrets arrive as SHA-256 hashes; no secret is stored.
-- Small tables keyed by text are WITHOUT ROWID: one b-tree instead of a
-- table and its primary-key index. The hot tables of the token endpoint
-- (codes, families, refresh_tokens) keep their rowid instead: new rows go
-- to the table's last page, shared by every write of a commit, and a code
-- redeemed soon after it was issued is found there too, so a commit
-- writes far fewer pages than with rows placed by their random hash.

CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
    id_hash    TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE auth_requests (
    id         TEXT NOT NULL PRIMARY KEY,
    data       BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE consents (
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
) STRICT, WITHOUT ROWID;
CREATE INDEX consents_client_id ON consents (client_id, user_id);

CREATE TABLE codes (
    hash           TEXT NOT NULL PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    family_id      TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
) STRICT;
CREATE INDEX codes_user_client ON codes (user_id, client_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE families (
    id          TEXT NOT NULL PRIMARY KEY,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    resource    TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX families_user_client ON families (user_id, client_id);
CREATE INDEX families_expires_at ON families (expires_at);

-- No index on family_id (and so no foreign key, whose cascade would need
-- one): it would cost a random page write per token. A token's ExpiresAt
-- is capped by its family's, so tokens go by their own expiry, and a token
-- whose family is gone is not found.
CREATE TABLE refresh_tokens (
    hash       TEXT NOT NULL PRIMARY KEY,
    family_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE clients_seen (
    client_id   TEXT NOT NULL PRIMARY KEY,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    last_result TEXT NOT NULL,
    tier        TEXT NOT NULL,
    fingerprint TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE blocks (
    pattern    TEXT NOT NULL PRIMARY KEY,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE dcr_clients (
    client_id     TEXT NOT NULL PRIMARY KEY,
    secret_hash   TEXT NOT NULL,
    metadata      BLOB NOT NULL,
    metadata_hash TEXT NOT NULL,
    source_ip     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX dcr_clients_dedup ON dcr_clients (metadata_hash, source_ip, created_at);
CREATE INDEX dcr_clients_expires_at ON dcr_clients (expires_at) WHERE last_used_at IS NULL;

CREATE TABLE signing_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    active_at   INTEGER NOT NULL,
    retire_at   INTEGER,
    expire_at   INTEGER
) STRICT;

CREATE TABLE jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX jtis_expires_at ON jtis (expires_at);

-- One row per key and fixed window; window_us is the window's length, so
-- one key counted over different lengths keeps separate counters.
CREATE TABLE rate_hits (
    key          TEXT NOT NULL,
    window_us    INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (key, window_us, window_start)
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_hits_expires_at ON rate_hits (expires_at);
