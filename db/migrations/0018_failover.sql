-- 0018: who carries a client (issue 18). A mapping keeps proxy_id (its primary) and gains
-- on_down: 'block' (the default, as before: the client is blocked while its primary is not up)
-- or 'failover' (the client is carried by the first usable proxy of primary-then-
-- mapping_failover, in that order). Hysteresis: a proxy that has been up for fewer than
-- failover_hysteresis probes in a row (proxy_health.up_probes) comes after every proxy that has
-- been up longer, so a recovered primary takes its clients back only once it has stayed up, and a
-- flapping one never does; when no proxy has been up that long the order alone decides.

ALTER TABLE mappings ADD COLUMN on_down TEXT NOT NULL DEFAULT 'block' CHECK (on_down IN ('block', 'failover'));

CREATE TABLE mapping_failover (
    mapping_id INTEGER NOT NULL REFERENCES mappings(id) ON DELETE CASCADE,
    pos        INTEGER NOT NULL CHECK (pos BETWEEN 1 AND 8),
    proxy_id   INTEGER NOT NULL REFERENCES proxies(id) ON DELETE RESTRICT,
    PRIMARY KEY (mapping_id, pos),
    UNIQUE (mapping_id, proxy_id)
) WITHOUT ROWID;
CREATE INDEX mapping_failover_proxy ON mapping_failover(proxy_id);

-- a failover proxy is one of the mapping's organisation (pgw-api checks first; this is the floor)
CREATE TRIGGER mapping_failover_org BEFORE INSERT ON mapping_failover
WHEN (SELECT org_id FROM mappings WHERE id = NEW.mapping_id) IS NOT (SELECT org_id FROM proxies WHERE id = NEW.proxy_id)
BEGIN SELECT RAISE(ABORT, 'a failover proxy must belong to the mapping''s organisation'); END;
CREATE TRIGGER mapping_failover_fixed BEFORE UPDATE ON mapping_failover
BEGIN SELECT RAISE(ABORT, 'failover lists are replaced, not updated'); END;
-- a mapping moved onto a proxy of its own list (the CSV import sets only the primary): the list
-- keeps the others
CREATE TRIGGER mapping_failover_not_primary AFTER UPDATE OF proxy_id ON mappings
BEGIN DELETE FROM mapping_failover WHERE mapping_id = NEW.id AND proxy_id = NEW.proxy_id; END;
CREATE TRIGGER change_failover_ins AFTER INSERT ON mapping_failover BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_failover_del AFTER DELETE ON mapping_failover BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;

-- probes in a row after which the proxy was up (0 while it is not up); pgw-healthd writes it
ALTER TABLE proxy_health ADD COLUMN up_probes INTEGER NOT NULL DEFAULT 0 CHECK (up_probes >= 0);

-- the carrier changes when a proxy reaches failover_hysteresis probes up: the agent and the
-- forwarder must see that too
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, dns_status, udp, up_probes ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.dns_status IS NOT NEW.dns_status
    OR OLD.udp IS NOT NEW.udp
    OR (OLD.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
       IS NOT (NEW.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;

-- A proxy a client may be carried by now: enabled, up, and that result fresh (0008).
CREATE VIEW proxy_usable AS
SELECT p.id AS proxy_id, h.up_probes,
       h.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3)
           AS settled
FROM proxies p JOIN proxy_health h ON h.proxy_id = p.id
WHERE p.enabled = 1 AND h.status = 'up' AND coalesce(h.fresh_until, 0) > unixepoch()
      AND coalesce(h.checked_at, 0) <= unixepoch();

-- The proxy that carried each failover mapping when pgw-healthd last looked (it writes this
-- table with every result, in the same transaction): the memory that keeps a client on the proxy
-- it is on rather than moving it to one that comes first in its list only because that one
-- settled first.
CREATE TABLE mapping_carrier (
    mapping_id INTEGER PRIMARY KEY REFERENCES mappings(id) ON DELETE CASCADE,
    proxy_id   INTEGER NOT NULL REFERENCES proxies(id) ON DELETE CASCADE
);

-- The one definition of an active client, read unscoped by the agent and the forwarder (they
-- connect through carrying_proxy_id) and scoped by pgw-api. carrying_proxy_id, for an enabled
-- mapping:
--   * when the proxy that carried it (mapping_carrier) is one of its list and usable: a proxy
--     ahead of it in the list that has settled, else that proxy (no move);
--   * else the first usable proxy of its list that has settled, else the first usable one;
--   * NULL (blocked) when none is usable, or the mapping is disabled.
-- A 'block' mapping's list is its primary alone. (Index lookups per mapping, not a sorted
-- union: SQLite's planner materialises the union per row, seconds for 10,000 mappings.)
DROP VIEW mapping_state;
CREATE VIEW mapping_state AS
SELECT id, client_ip, proxy_id, enabled, label, carrying_proxy_id IS NOT NULL AS active, org_id, on_down,
       carrying_proxy_id
FROM (SELECT x.id, x.client_ip, x.proxy_id, x.enabled, x.label, x.org_id, x.on_down,
             CASE WHEN x.enabled = 1 THEN
                 CASE WHEN x.cur_pos IS NOT NULL THEN coalesce(
                     (SELECT u.proxy_id FROM proxy_usable u WHERE u.proxy_id = x.proxy_id AND u.settled AND x.cur_pos > 0),
                     (SELECT f.proxy_id FROM mapping_failover f JOIN proxy_usable u ON u.proxy_id = f.proxy_id
                      WHERE f.mapping_id = x.id AND u.settled AND f.pos < x.cur_pos ORDER BY f.pos LIMIT 1),
                     x.cur)
                 ELSE coalesce(
                     (SELECT u.proxy_id FROM proxy_usable u WHERE u.proxy_id = x.proxy_id AND u.settled),
                     (SELECT f.proxy_id FROM mapping_failover f JOIN proxy_usable u ON u.proxy_id = f.proxy_id
                      WHERE f.mapping_id = x.id AND x.on_down = 'failover' AND u.settled ORDER BY f.pos LIMIT 1),
                     (SELECT u.proxy_id FROM proxy_usable u WHERE u.proxy_id = x.proxy_id),
                     (SELECT f.proxy_id FROM mapping_failover f JOIN proxy_usable u ON u.proxy_id = f.proxy_id
                      WHERE f.mapping_id = x.id AND x.on_down = 'failover' ORDER BY f.pos LIMIT 1))
                 END
             END AS carrying_proxy_id
      FROM (SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label, m.org_id, m.on_down, c.proxy_id AS cur,
                   CASE WHEN m.on_down = 'failover' AND c.proxy_id IN (SELECT proxy_id FROM proxy_usable) THEN
                       CASE WHEN c.proxy_id = m.proxy_id THEN 0
                            ELSE (SELECT f.pos FROM mapping_failover f WHERE f.mapping_id = m.id AND f.proxy_id = c.proxy_id)
                       END
                   END AS cur_pos
            FROM mappings m LEFT JOIN mapping_carrier c ON c.mapping_id = m.id) x);
