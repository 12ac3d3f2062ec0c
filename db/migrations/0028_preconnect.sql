-- 0028: connection setup in one round trip (issue 24).
-- proxies.preconnect: pgw-forwarder may keep a few connected, greeted and authenticated sessions
-- to this proxy ready for the next client connection (1, the default), or opens one per
-- connection only (0: the per-proxy opt-out, for a proxy that counts or bills idle sessions).
ALTER TABLE proxies ADD COLUMN preconnect INTEGER NOT NULL DEFAULT 1 CHECK (preconnect IN (0, 1));

-- proxy_health.early_data: a probe proved the proxy takes the client's first bytes in the same
-- write as the request, ahead of its reply (pgw-healthd finds out as it does pipelining, over a
-- plain http health URL); the forwarder sends them together only to proxies marked 1. 0, the
-- default, is always safe: some servers drop bytes that arrive before their reply.
ALTER TABLE proxy_health ADD COLUMN early_data INTEGER NOT NULL DEFAULT 0 CHECK (early_data IN (0, 1));

-- the forwarder acts on it: its polling fallback must see the change
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, early_data, dns_status, udp, up_probes ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.early_data IS NOT NEW.early_data
    OR OLD.dns_status IS NOT NEW.dns_status OR OLD.udp IS NOT NEW.udp
    OR (OLD.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
       IS NOT (NEW.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
