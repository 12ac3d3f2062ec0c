-- 0017: exit pinning (issue 18). A proxy may name where it must leave from: expected_exit, a
-- comma-separated list of addresses and CIDRs in canonical form (pgw-api writes it; empty: any
-- exit). pgw-healthd marks a proxy whose probe sees another exit address down at once, with the
-- reason exit_ip_mismatch, and its clients are blocked like those of any down proxy.
ALTER TABLE proxies ADD COLUMN expected_exit TEXT NOT NULL DEFAULT '' CHECK (length(expected_exit) <= 2048);
