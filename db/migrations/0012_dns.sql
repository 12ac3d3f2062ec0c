-- 0012: DNS through each client's proxy (dns_mode=proxy). pgw-healthd looks the setting
-- dns_check_name up through each proxy, from the resolvers of dns_upstream in turn, and writes
-- whether the proxy carries DNS: 'unknown' (not checked yet), 'up' or 'down' (with the error).
-- pgw-forwarder answers SERVFAIL at once for clients of a proxy marked 'down'; the proxy stays
-- up for TCP.

ALTER TABLE proxy_health ADD COLUMN dns_status TEXT NOT NULL DEFAULT 'unknown'
    CHECK (dns_status IN ('unknown', 'up', 'down'));
ALTER TABLE proxy_health ADD COLUMN dns_error TEXT;
ALTER TABLE proxy_health ADD COLUMN dns_latency_ms INTEGER;

-- the forwarder acts on dns_status: its polling fallback must see the change
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, dns_status ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.dns_status IS NOT NEW.dns_status
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
