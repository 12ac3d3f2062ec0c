-- 0030: pgw-forwarder relays to the address pgw-healthd proved, not to one of its own.
-- A proxy named by a host name was resolved by each daemon on its own: a name with several
-- addresses (a provider's round robin) could be probed at one address (up, its exit IP as
-- expected) while the forwarder sent clients to another, never checked. pgw-healthd now writes
-- where its last good probe went: the proxy's host and port as probed and the address they
-- resolved to; the forwarder relays a named proxy's clients only to that address, and only
-- while the proxy row still names that host and port (else they wait, blocked, for a probe).
ALTER TABLE proxy_health ADD COLUMN probed_host TEXT NOT NULL DEFAULT '' CHECK (length(probed_host) <= 253);
ALTER TABLE proxy_health ADD COLUMN probed_port INTEGER NOT NULL DEFAULT 0 CHECK (probed_port BETWEEN 0 AND 65535);
ALTER TABLE proxy_health ADD COLUMN probed_addr TEXT NOT NULL DEFAULT '' CHECK (length(probed_addr) <= 45);

-- the forwarder acts on it: its polling fallback must see the change
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining, early_data, dns_status, udp, up_probes,
    probed_host, probed_port, probed_addr ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining OR OLD.early_data IS NOT NEW.early_data
    OR OLD.dns_status IS NOT NEW.dns_status OR OLD.udp IS NOT NEW.udp
    OR OLD.probed_host IS NOT NEW.probed_host OR OLD.probed_port IS NOT NEW.probed_port
    OR OLD.probed_addr IS NOT NEW.probed_addr
    OR (OLD.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
       IS NOT (NEW.up_probes >= coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'failover_hysteresis'), 3))
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;

-- a proxy moved (host or port): what a probe proved of the old endpoint is no more, so an edit
-- undone (A, B, A again) cannot bring back an address before a probe of it; on an HA backup too
CREATE TRIGGER proxy_probed_of_endpoint AFTER UPDATE OF host, port ON proxies
WHEN OLD.host IS NOT NEW.host OR OLD.port IS NOT NEW.port
BEGIN UPDATE proxy_health SET probed_host = '', probed_port = 0, probed_addr = '' WHERE proxy_id = NEW.id; END;
