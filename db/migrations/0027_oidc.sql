-- 0027: single sign-on with OpenID Connect (issue 23). A user made by a login through the
-- provider carries the provider's issuer and its subject (the "sub" claim), which identify it
-- at every later login; local users have neither. Such a user has no password of its own (its
-- password_hash is a placeholder no password verifies against, and password logins refuse it).
-- Unique per (issuer, subject) in pgw-api's code, not by an index: an HA backup applies the
-- master's rows in an order a unique index could trip on.
ALTER TABLE users ADD COLUMN sso_issuer TEXT CHECK (sso_issuer IS NULL OR length(sso_issuer) BETWEEN 1 AND 512);
ALTER TABLE users ADD COLUMN sso_subject TEXT CHECK (sso_subject IS NULL OR length(sso_subject) BETWEEN 1 AND 255);
CREATE INDEX users_sso ON users(sso_issuer, sso_subject) WHERE sso_issuer IS NOT NULL;
