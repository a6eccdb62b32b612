-- 0001_init: the first mcpauth schema for PostgreSQL.
--
-- Times are timestamptz; NULL means "not set" (a zero time.Time). Codes,
-- refresh tokens, session ids and DCR client secrets arrive as SHA-256
-- hashes; no secret is stored. Keys and the columns lists are ordered by
-- use COLLATE "C": byte order whatever the database's locale, and cheaper
-- comparisons in the indexes.

CREATE TABLE users (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    name          text COLLATE "C" NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
    id_hash    text COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE auth_requests (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    data       bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE consents (
    user_id     text COLLATE "C" NOT NULL,
    client_id   text COLLATE "C" NOT NULL,
    resource    text COLLATE "C" NOT NULL,
    scopes      text NOT NULL,
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);
CREATE INDEX consents_client_id ON consents (client_id, user_id);

CREATE TABLE codes (
    hash           text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id      text COLLATE "C" NOT NULL,
    user_id        text COLLATE "C" NOT NULL,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    resource       text NOT NULL,
    scopes         text NOT NULL,
    family_id      text COLLATE "C" NOT NULL,
    auth_time      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX codes_user_client ON codes (user_id, client_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE families (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    client_id   text COLLATE "C" NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    resource    text NOT NULL,
    scopes      text NOT NULL,
    fingerprint text NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX families_user_client ON families (user_id, client_id);
CREATE INDEX families_expires_at ON families (expires_at);

-- No index on family_id, and so no foreign key (whose cascade would need
-- one): every rotation would pay for it. A token's ExpiresAt is capped by
-- its family's, so tokens go by their own expiry, and a token whose
-- family is gone is not found.
CREATE TABLE refresh_tokens (
    hash       text COLLATE "C" NOT NULL PRIMARY KEY,
    family_id  text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE clients_seen (
    client_id   text COLLATE "C" NOT NULL PRIMARY KEY,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    last_result text NOT NULL,
    tier        text NOT NULL,
    fingerprint text NOT NULL
);

CREATE TABLE blocks (
    pattern    text COLLATE "C" NOT NULL PRIMARY KEY,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE dcr_clients (
    client_id     text COLLATE "C" NOT NULL PRIMARY KEY,
    secret_hash   text NOT NULL,
    metadata      bytea NOT NULL,
    metadata_hash text COLLATE "C" NOT NULL,
    source_ip     text COLLATE "C" NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX dcr_clients_dedup ON dcr_clients (metadata_hash, source_ip, created_at);
CREATE INDEX dcr_clients_expires_at ON dcr_clients (expires_at) WHERE last_used_at IS NULL;

CREATE TABLE signing_keys (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm   text NOT NULL,
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    active_at   timestamptz NOT NULL,
    retire_at   timestamptz,
    expire_at   timestamptz
);

CREATE TABLE jtis (
    client_id  text COLLATE "C" NOT NULL,
    jti        text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX jtis_expires_at ON jtis (expires_at);

-- One row per key and fixed window; window_us is the window's length in
-- microseconds, so one key counted over different lengths keeps separate
-- counters.
CREATE TABLE rate_hits (
    key          text COLLATE "C" NOT NULL,
    window_us    bigint NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (key, window_us, window_start)
);
CREATE INDEX rate_hits_expires_at ON rate_hits (expires_at);
