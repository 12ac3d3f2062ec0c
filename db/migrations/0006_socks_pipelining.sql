-- 0006: whether a SOCKS5 proxy takes its greeting, auth and CONNECT request in one write.
-- pgw-healthd finds out with one pipelined probe after a proxy is first seen up (and again
-- after a change or a failure the forwarder reports); pgw-forwarder pipelines only to proxies
-- marked 1. 0 (the default) is always safe: some servers, microsocks among them, drop bytes
-- that arrive ahead of their turn.

ALTER TABLE proxy_health ADD COLUMN pipelining INTEGER NOT NULL DEFAULT 0 CHECK (pipelining IN (0, 1));

-- the forwarder acts on it: its polling fallback must see the change
DROP TRIGGER change_health_status;
CREATE TRIGGER change_health_status AFTER UPDATE OF status, pipelining ON proxy_health
WHEN OLD.status IS NOT NEW.status OR OLD.pipelining IS NOT NEW.pipelining
BEGIN UPDATE change_seq SET seq = seq + 1 WHERE topic = 'health'; END;
