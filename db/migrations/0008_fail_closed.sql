-- 0008: fail closed when pgw-healthd hangs, and interfaces the agent cannot find.
-- proxy_health.fresh_until: pgw-healthd writes, with every result, the unix time until which
-- that result may be trusted (two health intervals plus three timeouts). A result past it --
-- a stopped, wedged or dead healthd -- counts as unknown, which blocks: the view below is the
-- one definition of "active", read by the agent, the forwarder and the API.
ALTER TABLE proxy_health ADD COLUMN fresh_until INTEGER;

-- agent_state: the interfaces the agent enforces on, as it last saw them (rtnetlink).
ALTER TABLE agent_state ADD COLUMN lan_iface TEXT NOT NULL DEFAULT '' CHECK (length(lan_iface) <= 15);
ALTER TABLE agent_state ADD COLUMN wan_iface TEXT NOT NULL DEFAULT '' CHECK (length(wan_iface) <= 15);
ALTER TABLE agent_state ADD COLUMN lan_iface_present INTEGER NOT NULL DEFAULT 1 CHECK (lan_iface_present IN (0, 1));
ALTER TABLE agent_state ADD COLUMN wan_iface_present INTEGER NOT NULL DEFAULT 1 CHECK (wan_iface_present IN (0, 1));
ALTER TABLE agent_state ADD COLUMN iface_error TEXT NOT NULL DEFAULT '' CHECK (length(iface_error) <= 256);

-- health as it counts: 'up' only while fresh. A result "from the future" (the clock was set
-- back) is not trusted either: it would otherwise stay fresh for as long as the jump.
CREATE VIEW health_state AS
SELECT h.*,
       CASE WHEN h.status = 'up' AND NOT (coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch())
            THEN 'unknown' ELSE h.status END AS effective_status,
       (h.status = 'up' AND NOT (coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch()))
           AS stale
FROM proxy_health h;

DROP VIEW mapping_state;
CREATE VIEW mapping_state AS
SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label,
       (m.enabled = 1 AND p.enabled = 1 AND coalesce(h.status, 'unknown') = 'up'
        AND coalesce(h.fresh_until, 0) > unixepoch() AND coalesce(h.checked_at, 0) <= unixepoch()) AS active
FROM mappings m
JOIN proxies p ON p.id = m.proxy_id
LEFT JOIN proxy_health h ON h.proxy_id = p.id;
