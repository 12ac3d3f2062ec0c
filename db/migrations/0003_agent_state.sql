-- 0003: what pgw-agent last applied to the kernel, for the API, /metrics and pgwctl status.

CREATE TABLE agent_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    generation    INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    applied_at    INTEGER,                       -- unix time of the last successful apply
    duration_us   INTEGER CHECK (duration_us IS NULL OR duration_us >= 0),
    kind          TEXT NOT NULL DEFAULT '' CHECK (kind IN ('', 'full', 'elements')),
    active_count  INTEGER NOT NULL DEFAULT 0 CHECK (active_count >= 0),
    blocked_count INTEGER NOT NULL DEFAULT 0 CHECK (blocked_count >= 0),
    last_error    TEXT NOT NULL DEFAULT '' CHECK (length(last_error) <= 512),
    error_at      INTEGER,
    errors_total  INTEGER NOT NULL DEFAULT 0 CHECK (errors_total >= 0)
);
INSERT INTO agent_state (id) VALUES (1);
