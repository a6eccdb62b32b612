-- 0002_cimd_cache: the CIMD document cache (cimd.Cache) shared by the
-- replicas, so that a cluster fetches each document once per freshness
-- lifetime, and the leases that let one replica fetch a document while the
-- others wait for it. NULL times are zero time.Time values.

CREATE TABLE cimd_entries (
    client_id     text COLLATE "C" NOT NULL PRIMARY KEY,
    body          bytea NOT NULL,
    etag          text NOT NULL,
    last_modified text NOT NULL,
    cache_control text NOT NULL,
    expires       text NOT NULL,
    fetched_at    timestamptz,
    fresh_until   timestamptz,
    stale_until   timestamptz,
    fingerprint   text NOT NULL
);
CREATE INDEX cimd_entries_stale_until ON cimd_entries (stale_until);

CREATE TABLE cimd_fetch_leases (
    client_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX cimd_fetch_leases_expires_at ON cimd_fetch_leases (expires_at);
