-- 0021: a client's MAC address (issue 19). mappings.mac: lower case, colon-separated ('' = not
-- bound). With one, pgw-agent admits the client's address only from that MAC (nftables: sets of
-- ether saddr . ip saddr; a permanent neighbour entry so that replies go to it whatever ARP or
-- NDP say), so another LAN host cannot borrow the address and with it the client's proxy.
-- mac_spoof: what pgw-agent saw refused: packets from a bound address with another MAC.
ALTER TABLE mappings ADD COLUMN mac TEXT NOT NULL DEFAULT '' CHECK (mac = '' OR (length(mac) = 17 AND mac GLOB
    '[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]'));
CREATE TABLE mac_spoof (
    client_ip  TEXT NOT NULL CHECK (length(client_ip) BETWEEN 2 AND 45),
    mac        TEXT NOT NULL CHECK (length(mac) = 17),
    packets    INTEGER NOT NULL DEFAULT 0 CHECK (packets >= 0),
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (client_ip, mac)
) WITHOUT ROWID;
-- what was seen against a binding goes with the binding
CREATE TRIGGER mac_spoof_of_mapping AFTER DELETE ON mappings
BEGIN DELETE FROM mac_spoof WHERE client_ip = OLD.client_ip; END;
CREATE TRIGGER mac_spoof_of_binding AFTER UPDATE OF mac, client_ip ON mappings
WHEN OLD.mac IS NOT NEW.mac OR OLD.client_ip IS NOT NEW.client_ip
BEGIN DELETE FROM mac_spoof WHERE client_ip = OLD.client_ip; END;
