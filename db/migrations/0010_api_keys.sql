-- 0010: API keys for scripts. A key is shown once, when it is made: "pgwk_<id>_<secret>"; only
-- the SHA-256 of its secret (32 random bytes) is kept. It acts with its own role, may expire,
-- and is revoked, never deleted (its row stays for the audit trail).
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role         TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    secret_hash  TEXT NOT NULL CHECK (length(secret_hash) = 64 AND secret_hash NOT GLOB '*[^0-9a-f]*'),
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL DEFAULT (unixepoch()),
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
