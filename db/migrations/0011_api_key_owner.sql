-- 0011: an API key acts for the admin who made it. It works only while that user exists and is
-- enabled, and never with more than that user's role now: a demoted, disabled or deleted admin's
-- keys stop acting as admin (or at all) at once. Users are named by id (names can be reused);
-- keys whose maker is already gone get NULL and stop working.
ALTER TABLE api_keys ADD COLUMN created_by_id INTEGER;
UPDATE api_keys SET created_by_id = (SELECT id FROM users WHERE users.username = api_keys.created_by);
