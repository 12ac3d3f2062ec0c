-- 0014: organisations (issue 21; the plan: docs/design/TENANTS.md). An organisation owns LAN
-- networks, proxies and mappings (and their health), API keys and audit rows; users have a role
-- per organisation; a superadmin manages organisations and the gateway's global settings.
-- An existing install becomes organisation 1, 'default', owning every network in lan_cidr and
-- every object; every user is a member with their role, and its admins become superadmins.
-- Rows written without an organisation (pgwctl, scripts on the DB) belong to organisation 1.
--
-- proxies gets org_id and names unique per organisation (not across them: a name taken by
-- another organisation must not be learnt from a 409), and mappings reference (org_id,
-- proxy_id): no mapping can point at another organisation's proxy. SQLite cannot change a table's
-- constraints in place, and foreign keys are on during migrations, so the tables that reference
-- proxies are rebuilt to reference the new one before the old is dropped (dropping it first
-- would cascade into proxy_health); the renames then rewrite the references. Every row, id,
-- index, trigger and view comes back as it was: the agent and the forwarder read mapping_state
-- and health_state by column name, and nobody's enforcement changes.

CREATE TABLE orgs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
INSERT INTO orgs (id, name) VALUES (1, 'default');

-- LAN networks (IPv4 or IPv6 CIDR, canonical text); overlaps are refused by the API
CREATE TABLE org_networks (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    cidr   TEXT NOT NULL UNIQUE CHECK (length(cidr) BETWEEN 4 AND 49 AND cidr GLOB '*/*')
);
INSERT INTO org_networks (org_id, cidr) SELECT 1, value FROM settings WHERE key = 'lan_cidr';

CREATE TABLE user_orgs (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id  INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    PRIMARY KEY (user_id, org_id)
);
INSERT INTO user_orgs (user_id, org_id, role) SELECT id, 1, role FROM users;
ALTER TABLE users ADD COLUMN superadmin INTEGER NOT NULL DEFAULT 0 CHECK (superadmin IN (0, 1));
UPDATE users SET superadmin = 1 WHERE role = 'admin';
-- Until the API manages memberships and superadmins (the rest of issue 21), a user is what the
-- single-organisation install had: a member of organisation 1 with their role, an admin a
-- superadmin. The API's membership code replaces these two triggers.
CREATE TRIGGER users_default_org AFTER INSERT ON users
BEGIN
    INSERT OR IGNORE INTO user_orgs (user_id, org_id, role) VALUES (NEW.id, 1, NEW.role);
    UPDATE users SET superadmin = (NEW.role = 'admin') WHERE id = NEW.id;
END;
CREATE TRIGGER users_default_org_role AFTER UPDATE OF role ON users WHEN OLD.role IS NOT NEW.role
BEGIN
    UPDATE user_orgs SET role = NEW.role WHERE user_id = NEW.id AND org_id = 1;
    UPDATE users SET superadmin = (NEW.role = 'admin') WHERE id = NEW.id;
END;

DROP VIEW mapping_state;
DROP VIEW health_state;

CREATE TABLE proxies_new (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL DEFAULT 1 REFERENCES orgs(id) ON DELETE RESTRICT,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    type       TEXT NOT NULL CHECK (type IN ('socks5', 'http')),
    host       TEXT NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    username   TEXT NOT NULL DEFAULT '' CHECK (length(username) <= 255),
    password   TEXT NOT NULL DEFAULT '' CHECK (length(password) <= 255),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (org_id, name),
    UNIQUE (org_id, id)
);
INSERT INTO proxies_new (id, org_id, name, type, host, port, username, password, enabled, created_at, updated_at)
SELECT id, 1, name, type, host, port, username, password, enabled, created_at, updated_at FROM proxies;

CREATE TABLE mappings_new (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL DEFAULT 1,
    client_ip  TEXT NOT NULL UNIQUE CHECK (
                   (length(client_ip) BETWEEN 7 AND 15 AND client_ip NOT GLOB '*[^0-9.]*') OR
                   (length(client_ip) BETWEEN 3 AND 45 AND client_ip GLOB '*:*' AND client_ip NOT GLOB '*[^0-9a-f:.]*')),
    proxy_id   INTEGER NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    label      TEXT NOT NULL DEFAULT '' CHECK (length(label) <= 128),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    FOREIGN KEY (org_id, proxy_id) REFERENCES proxies_new (org_id, id) ON DELETE RESTRICT
);
INSERT INTO mappings_new (id, org_id, client_ip, proxy_id, enabled, label, created_at, updated_at)
SELECT id, 1, client_ip, proxy_id, enabled, label, created_at, updated_at FROM mappings;

CREATE TABLE proxy_health_new (
    proxy_id              INTEGER PRIMARY KEY REFERENCES proxies_new(id) ON DELETE CASCADE,
    status                TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'up', 'down')),
    latency_ms            INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),
    connect_ms            INTEGER CHECK (connect_ms IS NULL OR connect_ms >= 0),
    handshake_ms          INTEGER CHECK (handshake_ms IS NULL OR handshake_ms >= 0),
    first_byte_ms         INTEGER CHECK (first_byte_ms IS NULL OR first_byte_ms >= 0),
    exit_ip               TEXT NOT NULL DEFAULT '' CHECK (length(exit_ip) <= 45),
    checked_at            INTEGER,
    last_error            TEXT NOT NULL DEFAULT '' CHECK (length(last_error) <= 256),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    consecutive_successes INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_successes >= 0),
    pipelining            INTEGER NOT NULL DEFAULT 0 CHECK (pipelining IN (0, 1)),
    fresh_until           INTEGER,
    dns_status            TEXT NOT NULL DEFAULT 'unknown' CHECK (dns_status IN ('unknown', 'up', 'down')),
    dns_error             TEXT,
    dns_latency_ms        INTEGER,
    udp                   TEXT NOT NULL DEFAULT 'unknown' CHECK (udp IN ('unknown', 'yes', 'no')),
    udp_error             TEXT
);
INSERT INTO proxy_health_new SELECT proxy_id, status, latency_ms, connect_ms, handshake_ms, first_byte_ms, exit_ip,
    checked_at, last_error, consecutive_failures, consecutive_successes, pipelining, fresh_until, dns_status,
    dns_error, dns_latency_ms, udp, udp_error FROM proxy_health;

CREATE TABLE health_history_new (
    id         INTEGER PRIMARY KEY,
    proxy_id   INTEGER NOT NULL REFERENCES proxies_new(id) ON DELETE CASCADE,
    checked_at INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('up', 'down')),
    latency_ms INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),
    exit_ip    TEXT NOT NULL DEFAULT '' CHECK (length(exit_ip) <= 45),
    error      TEXT NOT NULL DEFAULT '' CHECK (length(error) <= 256)
);
INSERT INTO health_history_new (id, proxy_id, checked_at, status, latency_ms, exit_ip, error)
SELECT id, proxy_id, checked_at, status, latency_ms, exit_ip, error FROM health_history;

-- the old children first (nothing references them), then the old parent (nothing references it
-- any more); the renames rewrite the new children's references to "proxies"
DROP TABLE mappings;
DROP TABLE health_history;
DROP TABLE proxy_health;
DROP TABLE proxies;
ALTER TABLE proxies_new RENAME TO proxies;
ALTER TABLE mappings_new RENAME TO mappings;
ALTER TABLE proxy_health_new RENAME TO proxy_health;
ALTER TABLE health_history_new RENAME TO health_history;

CREATE INDEX mappings_proxy ON mappings(proxy_id);
CREATE INDEX mappings_org ON mappings(org_id);
CREATE INDEX health_history_proxy ON health_history(proxy_id, checked_at);

-- as in 0002, 0005 and 0013
CREATE TRIGGER proxies_health_row AFTER INSERT ON proxies
BEGIN
    INSERT INTO proxy_health (proxy_id) VALUES (NEW.id);
END;
CREATE TRIGGER change_proxies_ins AFTER INSERT ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_proxies_upd AFTER UPDATE ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_proxies_del AFTER DELETE ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_mappings_ins AFTER INSERT ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_upd AFTER UPDATE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_del AFTER DELETE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, dns_status, udp ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.dns_status IS NOT NEW.dns_status
    OR OLD.udp IS NOT NEW.udp
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
-- an object never moves between organisations (it would take its clients' traffic along)
CREATE TRIGGER proxies_org_fixed BEFORE UPDATE OF org_id ON proxies WHEN OLD.org_id IS NOT NEW.org_id
BEGIN SELECT RAISE(ABORT, 'a proxy cannot move to another organisation'); END;
CREATE TRIGGER mappings_org_fixed BEFORE UPDATE OF org_id ON mappings WHEN OLD.org_id IS NOT NEW.org_id
BEGIN SELECT RAISE(ABORT, 'a mapping cannot move to another organisation'); END;

-- as in 0008 (plus the organisation): the one definition of "active", read unscoped by the
-- agent and the forwarder
CREATE VIEW health_state AS
SELECT h.*,
       CASE WHEN h.status = 'up' AND NOT (coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch())
            THEN 'unknown' ELSE h.status END AS effective_status,
       (h.status = 'up' AND NOT (coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch()))
           AS stale
FROM proxy_health h;
CREATE VIEW mapping_state AS
SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label,
       (m.enabled = 1 AND p.enabled = 1 AND coalesce(h.status, 'unknown') = 'up'
        AND coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch()) AS active,
       m.org_id
FROM mappings m
JOIN proxies p ON p.id = m.proxy_id
LEFT JOIN proxy_health h ON h.proxy_id = p.id;

ALTER TABLE audit ADD COLUMN org_id INTEGER;         -- NULL: gateway-wide (logins, users, settings)
UPDATE audit SET org_id = 1 WHERE object_type IN ('proxy', 'mapping');
ALTER TABLE api_keys ADD COLUMN org_id INTEGER REFERENCES orgs(id);
UPDATE api_keys SET org_id = 1;
