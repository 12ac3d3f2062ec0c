-- 0002: proxy health (current state per proxy) and a bounded history for charts.

CREATE TABLE proxy_health (
    proxy_id              INTEGER PRIMARY KEY REFERENCES proxies(id) ON DELETE CASCADE,
    status                TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'up', 'down')),
    latency_ms            INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),
    connect_ms            INTEGER CHECK (connect_ms IS NULL OR connect_ms >= 0),
    handshake_ms          INTEGER CHECK (handshake_ms IS NULL OR handshake_ms >= 0),
    first_byte_ms         INTEGER CHECK (first_byte_ms IS NULL OR first_byte_ms >= 0),
    exit_ip               TEXT NOT NULL DEFAULT '' CHECK (length(exit_ip) <= 45),
    checked_at            INTEGER,
    last_error            TEXT NOT NULL DEFAULT '' CHECK (length(last_error) <= 256),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    consecutive_successes INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_successes >= 0)
);

CREATE TABLE health_history (
    id         INTEGER PRIMARY KEY,
    proxy_id   INTEGER NOT NULL REFERENCES proxies(id) ON DELETE CASCADE,
    checked_at INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('up', 'down')),
    latency_ms INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),
    exit_ip    TEXT NOT NULL DEFAULT '' CHECK (length(exit_ip) <= 45),
    error      TEXT NOT NULL DEFAULT '' CHECK (length(error) <= 256)
);
CREATE INDEX health_history_proxy ON health_history(proxy_id, checked_at);

-- Every proxy has a health row from the moment it exists ('unknown' until first probed).
INSERT INTO proxy_health (proxy_id) SELECT id FROM proxies;
CREATE TRIGGER proxies_health_row AFTER INSERT ON proxies
BEGIN
    INSERT INTO proxy_health (proxy_id) VALUES (NEW.id);
END;
