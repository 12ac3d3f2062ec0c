-- 0025: webhooks (issue 20): an organisation's alert receivers. pgw-api POSTs a JSON event to
-- url for each of the event types listed in events (comma-separated) and signs the body with
-- HMAC-SHA256 under secret (empty: unsigned); delivery results are kept on the row. The secret
-- is write-only in the API. Deleted with the organisation.
CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL DEFAULT 1 REFERENCES orgs(id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    url             TEXT NOT NULL CHECK (length(url) BETWEEN 10 AND 2048),
    events          TEXT NOT NULL CHECK (length(events) BETWEEN 1 AND 512),
    secret          TEXT NOT NULL DEFAULT '' CHECK (length(secret) <= 256),
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at      INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at      INTEGER NOT NULL DEFAULT (unixepoch()),
    last_attempt_at INTEGER,
    last_success_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    deliveries      INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, name)
);
