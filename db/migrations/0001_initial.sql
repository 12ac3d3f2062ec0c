-- 0001: users, proxies, mappings, settings, audit.
-- CHECK and foreign-key constraints make an invalid row impossible to store.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE
                  CHECK (length(username) BETWEEN 1 AND 64 AND username NOT GLOB '*[^A-Za-z0-9._@-]*'),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at    INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE proxies (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    type       TEXT NOT NULL CHECK (type IN ('socks5', 'http')),
    host       TEXT NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    username   TEXT NOT NULL DEFAULT '' CHECK (length(username) <= 255),
    password   TEXT NOT NULL DEFAULT '' CHECK (length(password) <= 255),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE mappings (
    id         INTEGER PRIMARY KEY,
    client_ip  TEXT NOT NULL UNIQUE CHECK (length(client_ip) BETWEEN 7 AND 15 AND client_ip NOT GLOB '*[^0-9.]*'),
    proxy_id   INTEGER NOT NULL REFERENCES proxies(id) ON DELETE RESTRICT,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    label      TEXT NOT NULL DEFAULT '' CHECK (length(label) <= 128),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX mappings_proxy ON mappings(proxy_id);

-- Runtime-editable settings (Configuration tab). Keys and values are validated by common/settings.c.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
    value      TEXT NOT NULL CHECK (length(value) <= 1024),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL DEFAULT (unixepoch()),
    username    TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    object_type TEXT NOT NULL DEFAULT '',
    object_id   TEXT NOT NULL DEFAULT '',
    before_json TEXT CHECK (before_json IS NULL OR json_valid(before_json)),
    after_json  TEXT CHECK (after_json IS NULL OR json_valid(after_json)),
    request_id  TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL DEFAULT 'ok' CHECK (result IN ('ok', 'denied', 'failed'))
);
CREATE INDEX audit_ts ON audit(ts);
