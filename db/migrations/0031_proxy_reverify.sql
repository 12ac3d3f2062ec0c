-- 0031: a proxy's verdict is for the proxy as it was probed. A change of what a probe proves (its
-- type, host, port, login, or the exits it may leave from) makes the proxy unknown until
-- pgw-healthd probes it as it is now: its clients wait, blocked, rather than go through an
-- endpoint or login nothing has checked (a provider that picks the exit country by the login
-- name; a pin the current exit breaks). verify_gen counts such changes: pgw-healthd stores a
-- probe's result only while it is the generation the probe was of, so a probe of the proxy as it
-- was, finishing after the edit, is not taken as proof of the proxy as it is.
ALTER TABLE proxy_health ADD COLUMN verify_gen INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER proxy_reverify AFTER UPDATE OF type, host, port, username, password, expected_exit ON proxies
WHEN OLD.type IS NOT NEW.type OR OLD.host IS NOT NEW.host OR OLD.port IS NOT NEW.port
    OR OLD.username IS NOT NEW.username OR OLD.password IS NOT NEW.password
    OR OLD.expected_exit IS NOT NEW.expected_exit
BEGIN
    UPDATE proxy_health SET status = 'unknown', fresh_until = NULL, consecutive_failures = 0,
        consecutive_successes = 0, up_probes = 0, last_error = 'the proxy was changed: checked again',
        verify_gen = verify_gen + 1 WHERE proxy_id = NEW.id;
END;
