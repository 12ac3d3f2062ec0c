-- 0009: sessions that can end. Ids are never reused (AUTOINCREMENT): a token names a user by
-- id, and a deleted user's token must never become the next user's. token_gen is the user's
-- session generation: every token carries the one it was issued under, and logout, a password
-- change or reset, and disabling bump it, so every token issued before stops working at once
-- (also an open event stream). Tokens from before this migration carry none: log in again.
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE
                  CHECK (length(username) BETWEEN 1 AND 64 AND username NOT GLOB '*[^A-Za-z0-9._@-]*'),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at    INTEGER NOT NULL DEFAULT (unixepoch()),
    token_gen     INTEGER NOT NULL DEFAULT 0 CHECK (token_gen >= 0)
);
INSERT INTO users_new (id, username, password_hash, role, disabled, created_at, updated_at)
SELECT id, username, password_hash, role, disabled, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
