-- 0004: the one definition of "active". A client is relayed only when its mapping and its
-- proxy are enabled and the proxy's last health is 'up' (unknown counts as down: fail closed).
-- pgw-agent, pgw-forwarder and pgw-api all read it from here, so they cannot disagree.

CREATE VIEW mapping_state AS
SELECT m.id, m.client_ip, m.proxy_id, m.enabled, m.label,
       (m.enabled = 1 AND p.enabled = 1 AND coalesce(h.status, 'unknown') = 'up') AS active
FROM mappings m
JOIN proxies p ON p.id = m.proxy_id
LEFT JOIN proxy_health h ON h.proxy_id = p.id;
