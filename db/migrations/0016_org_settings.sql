-- 0016: settings an organisation sets for itself (issue 21: "per-organisation settings where
-- they make sense"): the health URL its proxies are probed with, and the DNS resolvers its
-- clients' queries go to through their proxies (dns_mode=proxy). Absent: the gateway's setting.
-- A change moves the proxies counter: pgw-healthd and pgw-forwarder reload (not the settings
-- counter: the gateway's settings did not change, and no other organisation is told).
CREATE TABLE org_settings (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL CHECK (key IN ('health_url', 'dns_upstream')),
    value  TEXT NOT NULL CHECK (length(value) BETWEEN 1 AND 512),
    PRIMARY KEY (org_id, key)
);
CREATE TRIGGER change_org_settings_ins AFTER INSERT ON org_settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_org_settings_upd AFTER UPDATE ON org_settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_org_settings_del AFTER DELETE ON org_settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;

-- An API key acts as a superadmin only when it was made as one ("superadmin": true, by a
-- superadmin): an admin key a superadmin makes for one organisation's scripts is that
-- organisation's. Keys from before (a single-organisation install's admin keys, made by its
-- admins, who are superadmins) keep what they could do.
ALTER TABLE api_keys ADD COLUMN superadmin INTEGER NOT NULL DEFAULT 0 CHECK (superadmin IN (0, 1));
UPDATE api_keys SET superadmin = 1
 WHERE role = 'admin' AND created_by_id IN (SELECT id FROM users WHERE superadmin = 1)
   AND (SELECT count(*) FROM orgs) = 1;
