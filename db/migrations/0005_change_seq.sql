-- 0005: what changed, by topic, for the polling fallback. PRAGMA data_version moves on any
-- commit (healthd commits after every probe); daemons that only care about some rows watch
-- these counters instead, so a probe that changes no status reloads nothing.

CREATE TABLE change_seq (
    topic TEXT PRIMARY KEY CHECK (topic IN ('proxies', 'mappings', 'health', 'settings')),
    seq   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO change_seq (topic) VALUES ('proxies'), ('mappings'), ('health'), ('settings');

CREATE TRIGGER change_proxies_ins AFTER INSERT ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_proxies_upd AFTER UPDATE ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_proxies_del AFTER DELETE ON proxies BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'proxies'; END;
CREATE TRIGGER change_mappings_ins AFTER INSERT ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_upd AFTER UPDATE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_mappings_del AFTER DELETE ON mappings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'mappings'; END;
CREATE TRIGGER change_settings_ins AFTER INSERT ON settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'settings'; END;
CREATE TRIGGER change_settings_upd AFTER UPDATE ON settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'settings'; END;
CREATE TRIGGER change_settings_del AFTER DELETE ON settings BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'settings'; END;
-- health: only a change of status matters to enforcement (latency and exit IP do not)
CREATE TRIGGER change_health_status AFTER UPDATE OF status ON proxy_health WHEN OLD.status IS NOT NEW.status
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
