-- 0022: per-client rate limits (issue 19), enforced in the kernel by pgw-agent with tc (HTB on
-- the LAN interface for what the client downloads, on an IFB for what it uploads). kbit/s;
-- 0 = unlimited. A client's limit holds whatever proxy carries it.
ALTER TABLE mappings ADD COLUMN down_kbit INTEGER NOT NULL DEFAULT 0 CHECK (down_kbit BETWEEN 0 AND 100000000);
ALTER TABLE mappings ADD COLUMN up_kbit INTEGER NOT NULL DEFAULT 0 CHECK (up_kbit BETWEEN 0 AND 100000000);
