-- 0026: HA pair (issue 22). ha_state is this node's own row: its VRRP role (as keepalived's
-- notify hook `pgwctl ha notify` last set it; '' = never told, which is treated as backup), and
-- the configuration version it holds: origin (a random id a node takes when it becomes master)
-- and generation (bumped by every write to a synced table below). The backup copies the master's
-- tables with their version; per-node state (health, usage, stats, audit, mapping_state) is
-- never synced; nor is mappings.quota_exceeded, which each node's pgw-api sets from its own
-- counters. Progress of the sync is kept here for `pgwctl ha status` and /metrics.
CREATE TABLE ha_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    role              TEXT NOT NULL DEFAULT '' CHECK (role IN ('', 'master', 'backup', 'fault')),
    role_at_ms        INTEGER NOT NULL DEFAULT 0,
    transitions       INTEGER NOT NULL DEFAULT 0,
    origin            TEXT NOT NULL DEFAULT '',
    generation        INTEGER NOT NULL DEFAULT 0,
    master_generation INTEGER NOT NULL DEFAULT 0,
    synced_at_ms      INTEGER NOT NULL DEFAULT 0,
    in_sync_at_ms     INTEGER NOT NULL DEFAULT 0,
    sync_error        TEXT NOT NULL DEFAULT ''
);
INSERT INTO ha_state (id, origin) VALUES (1, lower(hex(randomblob(8))));
CREATE TRIGGER ha_orgs_ins AFTER INSERT ON orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_orgs_upd AFTER UPDATE OF name, created_at ON orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_orgs_del AFTER DELETE ON orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_users_ins AFTER INSERT ON users BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_users_upd AFTER UPDATE ON users BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_users_del AFTER DELETE ON users BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_user_orgs_ins AFTER INSERT ON user_orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_user_orgs_upd AFTER UPDATE ON user_orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_user_orgs_del AFTER DELETE ON user_orgs BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_api_keys_ins AFTER INSERT ON api_keys BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_api_keys_upd AFTER UPDATE OF name, role, secret_hash, expires_at, revoked_at, org_id, superadmin, created_by, created_by_id ON api_keys BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_api_keys_del AFTER DELETE ON api_keys BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_networks_ins AFTER INSERT ON org_networks BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_networks_upd AFTER UPDATE ON org_networks BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_networks_del AFTER DELETE ON org_networks BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_settings_ins AFTER INSERT ON org_settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_settings_upd AFTER UPDATE ON org_settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_org_settings_del AFTER DELETE ON org_settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_settings_ins AFTER INSERT ON settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_settings_upd AFTER UPDATE ON settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_settings_del AFTER DELETE ON settings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_proxies_ins AFTER INSERT ON proxies BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_proxies_upd AFTER UPDATE ON proxies BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_proxies_del AFTER DELETE ON proxies BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mappings_ins AFTER INSERT ON mappings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mappings_upd AFTER UPDATE OF id, org_id, client_ip, proxy_id, enabled, label, created_at, updated_at, on_down, max_conns, new_conns_per_s, mac, down_kbit, up_kbit, quota_bytes, quota_period ON mappings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mappings_del AFTER DELETE ON mappings BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mapping_failover_ins AFTER INSERT ON mapping_failover BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mapping_failover_upd AFTER UPDATE ON mapping_failover BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_mapping_failover_del AFTER DELETE ON mapping_failover BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_webhooks_ins AFTER INSERT ON webhooks BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_webhooks_upd AFTER UPDATE OF org_id, name, url, events, secret, enabled ON webhooks BEGIN UPDATE ha_state SET generation = generation + 1; END;
CREATE TRIGGER ha_webhooks_del AFTER DELETE ON webhooks BEGIN UPDATE ha_state SET generation = generation + 1; END;
