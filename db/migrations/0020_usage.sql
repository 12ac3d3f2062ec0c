-- 0020: usage history per client (issue 19). pgw-api adds what pgw-forwarder counted (bytes each
-- way, connections; counted when a connection ends) into buckets of a minute (kept a day), an
-- hour (kept 31 days) and a day (kept 366 days). usage_seen: the forwarder's counters as last
-- added (run: the forwarder's start time in ms, unique per run even when every run is PID 1 in
-- a container; a new run counts from 0), so that a restarted pgw-api takes up where it was.
CREATE TABLE client_usage (
    client_ip   TEXT NOT NULL CHECK (length(client_ip) BETWEEN 2 AND 45),
    step        INTEGER NOT NULL CHECK (step IN (60, 3600, 86400)),
    t           INTEGER NOT NULL,
    bytes_up    INTEGER NOT NULL DEFAULT 0 CHECK (bytes_up >= 0),
    bytes_down  INTEGER NOT NULL DEFAULT 0 CHECK (bytes_down >= 0),
    connections INTEGER NOT NULL DEFAULT 0 CHECK (connections >= 0),
    PRIMARY KEY (client_ip, step, t)
) WITHOUT ROWID;
CREATE TABLE usage_seen (
    client_ip   TEXT PRIMARY KEY CHECK (length(client_ip) BETWEEN 2 AND 45),
    run         INTEGER NOT NULL,
    bytes_up    INTEGER NOT NULL,
    bytes_down  INTEGER NOT NULL,
    connections INTEGER NOT NULL
);

-- a client's history is its mapping's: deleting the mapping deletes it, so an address mapped
-- again (by another organisation, say) starts with none
CREATE TRIGGER client_usage_of_mapping AFTER DELETE ON mappings
BEGIN DELETE FROM client_usage WHERE client_ip = OLD.client_ip; END;
