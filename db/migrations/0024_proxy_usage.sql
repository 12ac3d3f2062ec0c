-- 0024: usage history per proxy (issue 19): what its clients moved through it, in the same
-- minute/hour/day buckets as client_usage (and pruned alike). pgw-api adds each client's growth
-- to the proxy carrying it when it adds it to the client's history (every 5 s): a client moved
-- to another proxy within those seconds is counted on the new one.
CREATE TABLE proxy_usage (
    proxy_id    INTEGER NOT NULL REFERENCES proxies(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL CHECK (step IN (60, 3600, 86400)),
    t           INTEGER NOT NULL,
    bytes_up    INTEGER NOT NULL DEFAULT 0 CHECK (bytes_up >= 0),
    bytes_down  INTEGER NOT NULL DEFAULT 0 CHECK (bytes_down >= 0),
    connections INTEGER NOT NULL DEFAULT 0 CHECK (connections >= 0),
    PRIMARY KEY (proxy_id, step, t)
) WITHOUT ROWID;
