-- 0013: UDP through each client's proxy (issue 17). pgw-healthd finds out per proxy whether it
-- carries UDP: SOCKS5 UDP ASSOCIATE (RFC 1928 7) and one datagram through the relay to the
-- setting udp_check and back. 'unknown' (not checked yet), 'yes', or 'no' (with udp_error;
-- HTTP CONNECT proxies are always 'no'). Clients get UDP only through a proxy marked 'yes'.

ALTER TABLE proxy_health ADD COLUMN udp TEXT NOT NULL DEFAULT 'unknown' CHECK (udp IN ('unknown', 'yes', 'no'));
ALTER TABLE proxy_health ADD COLUMN udp_error TEXT;

-- the agent and the forwarder will act on it: their polling fallback must see the change
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, dns_status, udp ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.dns_status IS NOT NEW.dns_status
    OR OLD.udp IS NOT NEW.udp
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
