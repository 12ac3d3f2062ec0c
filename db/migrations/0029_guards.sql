-- 0029: two guards.
-- A client's usage history is its address's while the mapping holds it: a mapping moved to
-- another address (PUT/PATCH client_ip) leaves its history behind, as a deleted one does (0020),
-- so the next holder of the old address starts with none. An HA backup taking the master's rows
-- (api/hasnap.c) moves a changed row's address aside to a placeholder ('0:0:0:0:0:0:...', a
-- spelling no canonical address has) and back: that is no move, and keeps the history.
CREATE TRIGGER client_usage_of_mapping_move AFTER UPDATE OF client_ip ON mappings
WHEN OLD.client_ip IS NOT NEW.client_ip AND OLD.client_ip NOT LIKE '0:0:0:0:0:0:%'
    AND NEW.client_ip NOT LIKE '0:0:0:0:0:0:%'
BEGIN DELETE FROM client_usage WHERE client_ip = OLD.client_ip; END;
-- the quota count's trigger (0023) the same: the step aside reset the backup's counts
DROP TRIGGER client_quota_of_address;
CREATE TRIGGER client_quota_of_address AFTER UPDATE OF client_ip ON mappings
WHEN OLD.client_ip IS NOT NEW.client_ip AND OLD.client_ip NOT LIKE '0:0:0:0:0:0:%'
    AND NEW.client_ip NOT LIKE '0:0:0:0:0:0:%'
BEGIN DELETE FROM client_quota WHERE client_ip = OLD.client_ip; END;

-- proxy_allow_local (new, default false) refuses proxies on loopback, the gateway's own
-- addresses and the LAN. A gateway upgraded with a proxy on its own loopback (ss-local, tor,
-- ssh -D) keeps it working: the setting starts true there, and shows why in the Configuration tab.
INSERT OR IGNORE INTO settings (key, value)
SELECT 'proxy_allow_local', 'true' WHERE EXISTS (
    SELECT 1 FROM proxies WHERE lower(host) IN ('localhost', '::1') OR host LIKE '127.%'
        OR lower(host) LIKE '%.localhost');
