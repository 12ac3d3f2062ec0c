-- 0007: a client may be an IPv6 address too. client_ip holds the canonical text (dotted quad,
-- or RFC 5952 IPv6: lower case, shortest), which the API and the CSV import produce, so one
-- client has one spelling. SQLite cannot change a CHECK in place: the table is rebuilt with
-- its rows, ids, index, triggers and the view that reads it.

DROP VIEW mapping_state;
CREATE TABLE mappings_new (
    id         INTEGER PRIMARY KEY,
    client_ip  TEXT NOT NULL UNIQUE CHECK (
                   (length(client_ip) BETWEEN 7 AND 15 AND client_ip NOT GLOB '*[^0-9.]*') OR
                   (length(client_ip) BETWEEN 3 AND 45 AND client_ip GLOB '*:*' AND client_ip NOT GLOB '*[^0-9a-f:.]*')),
    proxy_id   INTEGER NOT NULL REFERENCES proxies(id) ON DELETE RESTRICT,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    label      TEXT NOT NULL DEFAULT '' CHECK (length(label) <= 128),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);
INSERT INTO mappings_new (id, client_ip, proxy_id, enabled, label, created_at, updated_at)
SELECT id, client_ip, proxy_id, enabled, label, created_at, updated_at FROM mappings;
DROP TABLE mappings;
ALTER TABLE mappings_new RENAME TO mappings;
CREATE INDEX mappings_proxy ON mappings(proxy_id);

CREATE TRIGGER change_mappings_ins AFTER INSERT ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_upd AFTER UPDATE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_del AFTER DELETE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;

-- as in 0004: the one definition of "active"
CREATE VIEW mapping_state AS
SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label,
       (m.enabled = 1 AND p.enabled = 1 AND coalesce(h.status, 'unknown') = 'up') AS active
FROM mappings m
JOIN proxies p ON p.id = m.proxy_id
LEFT JOIN proxy_health h ON h.proxy_id = p.id;
