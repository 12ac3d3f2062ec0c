-- 0019: per-client connection limits (issue 19). max_conns: connections a client may have open
-- through pgw-forwarder at once; new_conns_per_s: connections it may open per second (a burst of
-- one second's worth). 0: the gateway's settings client_max_conns / client_new_conns_per_s. So
-- that one device cannot take every forwarder slot (forwarder_max_connections).
ALTER TABLE mappings ADD COLUMN max_conns INTEGER NOT NULL DEFAULT 0 CHECK (max_conns BETWEEN 0 AND 1000000);
ALTER TABLE mappings ADD COLUMN new_conns_per_s INTEGER NOT NULL DEFAULT 0 CHECK (new_conns_per_s BETWEEN 0 AND 100000);
