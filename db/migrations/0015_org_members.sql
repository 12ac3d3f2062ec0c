-- 0015: memberships are managed by pgw-api (/api/v1/users, /api/v1/orgs) and pgwctl, no longer
-- derived from users.role by the two triggers 0014 kept until then. users.role stays as a
-- summary (admin when the user is a superadmin or an admin of some organisation).
--
-- Organisation 1 keeps the IPv6 clients it could map before organisations existed: every IPv6
-- client address is its network ('::/0') while it is the only organisation and owns no IPv6
-- network yet. A superadmin who makes a second organisation with IPv6 clients narrows it first
-- (the API refuses overlapping networks, and a change that leaves a mapping outside them).
-- Its IPv4 network, when lan_cidr was never stored, is the configured default: pgw-api adds it
-- at start (it knows PGW_LAN_CIDR; SQL does not).
DROP TRIGGER users_default_org;
DROP TRIGGER users_default_org_role;
INSERT INTO org_networks (org_id, cidr)
SELECT 1, '::/0'
 WHERE (SELECT count(*) FROM orgs) = 1 AND EXISTS (SELECT 1 FROM orgs WHERE id = 1)
   AND NOT EXISTS (SELECT 1 FROM org_networks WHERE cidr GLOB '*:*');

-- Live events per organisation: pgw-api's feed tells an organisation's dashboards to refetch
-- only when that organisation's proxies or mappings changed (another's changes are not to be
-- seen, not even as a refetch). Counted here, by the same writes that move change_seq.
ALTER TABLE orgs ADD COLUMN proxies_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN mappings_seq INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER org_proxies_ins AFTER INSERT ON proxies BEGIN UPDATE orgs SET proxies_seq = proxies_seq + 1 WHERE id = NEW.org_id; END;
CREATE TRIGGER org_proxies_upd AFTER UPDATE ON proxies BEGIN UPDATE orgs SET proxies_seq = proxies_seq + 1 WHERE id = NEW.org_id; END;
CREATE TRIGGER org_proxies_del AFTER DELETE ON proxies BEGIN UPDATE orgs SET proxies_seq = proxies_seq + 1 WHERE id = OLD.org_id; END;
CREATE TRIGGER org_mappings_ins AFTER INSERT ON mappings BEGIN UPDATE orgs SET mappings_seq = mappings_seq + 1 WHERE id = NEW.org_id; END;
CREATE TRIGGER org_mappings_upd AFTER UPDATE ON mappings BEGIN UPDATE orgs SET mappings_seq = mappings_seq + 1 WHERE id = NEW.org_id; END;
CREATE TRIGGER org_mappings_del AFTER DELETE ON mappings BEGIN UPDATE orgs SET mappings_seq = mappings_seq + 1 WHERE id = OLD.org_id; END;
