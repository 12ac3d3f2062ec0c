-- 0023: quotas (issue 19). A mapping's quota_bytes (0: none) per quota_period (day, week, month;
-- periods start at midnight, on Mondays, on the 1st, in the setting quota_timezone). pgw-api adds
-- what pgw-forwarder counted (bytes each way, TCP and UDP) to client_quota.used with the usage
-- history, and sets mappings.quota_exceeded when used reaches quota_bytes + granted: the client
-- is then blocked like a client of a dead proxy (mapping_state: not active) until the period
-- ends, an admin grants more or resets it. pgw-forwarder cuts at the byte (it counts live).
ALTER TABLE mappings ADD COLUMN quota_bytes INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes BETWEEN 0 AND 1000000000000000);
ALTER TABLE mappings ADD COLUMN quota_period TEXT NOT NULL DEFAULT 'month' CHECK (quota_period IN ('day', 'week', 'month'));
ALTER TABLE mappings ADD COLUMN quota_exceeded INTEGER NOT NULL DEFAULT 0 CHECK (quota_exceeded IN (0, 1));
CREATE TABLE client_quota (
    client_ip    TEXT PRIMARY KEY CHECK (length(client_ip) BETWEEN 2 AND 45),
    period_start INTEGER NOT NULL,            -- unix time the current period began
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    granted      INTEGER NOT NULL DEFAULT 0 CHECK (granted >= 0),
    warned       INTEGER NOT NULL DEFAULT 0 CHECK (warned IN (0, 1)) -- the 80 % event was sent
) WITHOUT ROWID;
CREATE TRIGGER client_quota_of_mapping AFTER DELETE ON mappings
BEGIN DELETE FROM client_quota WHERE client_ip = OLD.client_ip; END;
CREATE TRIGGER client_quota_of_address AFTER UPDATE OF client_ip ON mappings WHEN OLD.client_ip IS NOT NEW.client_ip
BEGIN DELETE FROM client_quota WHERE client_ip = OLD.client_ip; END;

-- mapping_state as in 0018, and a client over its quota is not active
DROP VIEW mapping_state;
CREATE VIEW mapping_state AS
SELECT id, client_ip, proxy_id, enabled, label, carrying_proxy_id IS NOT NULL AS active, org_id, on_down,
       carrying_proxy_id
FROM (SELECT x.id, x.client_ip, x.proxy_id, x.enabled, x.label, x.org_id, x.on_down, x.quota_exceeded,
             CASE WHEN x.enabled = 1 AND x.quota_exceeded = 0 THEN
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
      FROM (SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label, m.org_id, m.on_down, m.quota_exceeded, c.proxy_id AS cur,
                   CASE WHEN m.on_down = 'failover' AND c.proxy_id IN (SELECT proxy_id FROM proxy_usable) THEN
                       CASE WHEN c.proxy_id = m.proxy_id THEN 0
                            ELSE (SELECT f.pos FROM mapping_failover f WHERE f.mapping_id = m.id AND f.proxy_id = c.proxy_id)
                       END
                   END AS cur_pos
            FROM mappings m LEFT JOIN mapping_carrier c ON c.mapping_id = m.id) x);
