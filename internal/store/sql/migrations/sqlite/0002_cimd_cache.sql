-- 0002_cimd_cache: the CIMD document cache (cimd.Cache) kept in the
-- database, and the leases that let one process fetch a document while
-- others wait for it. Times as in 0001: INTEGER microseconds, NULL for a
-- zero time.

CREATE TABLE cimd_entries (
    client_id     TEXT NOT NULL PRIMARY KEY,
    body          BLOB NOT NULL,
    etag          TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    cache_control TEXT NOT NULL,
    expires       TEXT NOT NULL,
    fetched_at    INTEGER,
    fresh_until   INTEGER,
    stale_until   INTEGER,
    fingerprint   TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX cimd_entries_stale_until ON cimd_entries (stale_until);

CREATE TABLE cimd_fetch_leases (
    client_id  TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX cimd_fetch_leases_expires_at ON cimd_fetch_leases (expires_at);
