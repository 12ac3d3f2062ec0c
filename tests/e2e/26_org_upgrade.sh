#!/usr/bin/env bash
# Scenario (issue 21): upgrading a populated database from the last pgw before organisations
# (schema 13, built from this repository's history) keeps every mapping enforced throughout.
# That pgw runs with mapped-active, mapped-blocked, disabled and unmapped clients (IPv4 and
# IPv6) sending traffic; this version's pgwctl migrates the live database (13 -> now) under it;
# then its daemons are swapped for this version's. The kernel's sets of active clients are
# sampled every 100 ms through it all and never differ from the expected ones (no client
# blocked by the migration, none opened); tcpdump on the WAN interface sees no client packet;
# the active client relays before, during and after. The upgraded install is organisation 1
# with every mapping, network and user, its admin a superadmin.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"

# the sources of the commit before migration 0014, built once per checkout into build/prev-*
added=$(git -C "$ROOT" log --diff-filter=A --format=%H -- db/migrations/0014_orgs.sql 2>/dev/null | tail -1)
if [ -z "$added" ] || ! git -C "$ROOT" cat-file -e "$added^" 2>/dev/null; then
	echo "ok 1 # SKIP no git history here (a shallow clone or an archive): the pgw before organisations cannot be built"
	echo "1..1"
	exit 0
fi
OLD=$(git -C "$ROOT" rev-parse --short=12 "$added^")
PREV=$ROOT/build/prev-$OLD
if [ ! -x "$PREV/build/bin/pgw-agent" ]; then
	rm -rf "$PREV" && mkdir -p "$PREV" && git -C "$ROOT" archive "$OLD" | tar -x -C "$PREV" &&
		make -C "$PREV" -s -j"$(nproc)" all >"$PREV.build.log" 2>&1
fi
check "the pgw before organisations ($OLD) is built" test -x "$PREV/build/bin/pgw-agent"
OLD_BIN=$PREV/build/bin

lab_scenario
lab_api_env
db() { lab_db "$@"; }
A=192.168.2.10 A6=fd00:2::10 # mapped to an up proxy: active
B=192.168.2.11 B6=fd00:2::11 # mapped to a proxy that does not exist: blocked
D=192.168.2.12               # mapping disabled
U=192.168.2.13 U6=fd00:2::13 # unmapped
relays() { [ "$(lab_exec lan curl -s -m 3 --interface $A http://$LAB_WEB/ip)" = "$LAB_SOCKS_AUTH" ]; }

# control: without pgw the same tries cross the WAN interface, and the capture sees them
check "control: without pgw, client packets cross the WAN interface" test "$(lab_capture_control)" -gt 0

# a schema-13 install, populated by its own pgwctl
rm -f "$PGW_DB" "$PGW_DB"-wal "$PGW_DB"-shm
"$OLD_BIN/pgwctl" migrate >/dev/null
check_eq "the old pgwctl makes a schema-13 database" "$(db 'PRAGMA user_version')" "13"
"$OLD_BIN/pgwctl" settings set health_interval 1 >/dev/null
echo 'admin-password-1' | "$OLD_BIN/pgwctl" user add admin --role admin --password-stdin >/dev/null
echo 'viewer-password-1' | "$OLD_BIN/pgwctl" user add watcher --role viewer --password-stdin >/dev/null
db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES,
    (4, 'nowhere', 'socks5', '198.51.100.99', 1080, '', '');
    INSERT INTO mappings (client_ip, proxy_id, enabled) VALUES ('$A', 1, 1), ('$A6', 1, 1), ('$B', 4, 1), ('$B6', 4, 1),
    ('$D', 1, 0);"
declare -A pid
for d in healthd agent forwarder; do
	lab_bg gw "old-pgw-$d" "$OLD_BIN/pgw-$d"
	pid[$d]=$LAB_LAST_PID
done
check "the old pgw activates the active client, which relays" wait_for 15 relays

# the kernel's active sets, every 100 ms, until told to stop: "active4|active6" per line
elements() { lab_exec gw nft list set inet pgw "$1" 2>/dev/null | tr -d ' \t\n' | sed -n 's/.*elements={\([^}]*\)}.*/\1/p'; }
(
	trap - EXIT INT TERM
	while [ -d "$LAB_DIR" ] && [ ! -e "$LAB_DIR/sample.stop" ]; do # (the lab gone: stop too)
		if lab_exec gw nft list table inet pgw >/dev/null 2>&1; then
			echo "$(elements active4)|$(elements active6)"
		else
			echo "no table"
		fi
		sleep 0.1
	done
) >"$LAB_DIR/samples" &
sampler=$!
echo "$sampler sampler" >>"$LAB_DIR/pids" # stopped with the lab if this script ends early
lab_capture_start upgrade || exit 1
lab_traffic_start $B $B6
lab_traffic_start $D
lab_traffic_start $U $U6
sleep 1

out=$("$PGW_BIN/pgwctl" migrate 2>&1)
check_match "this pgwctl migrates the live database from 13" "$out" "migrated from schema version 13 to [0-9]+"
sleep 3 # the old daemons see the change and reconcile
check "the active client still relays through the old daemons on the new schema" relays
for d in healthd agent forwarder; do lab_stop_pid "${pid[$d]}"; done
for d in healthd agent forwarder api; do lab_bg gw "pgw-$d" "$PGW_BIN/pgw-$d"; done
check "pgw-api of this version listening" wait_for 10 grep -q 'listening on http' "$LAB_DIR/pgw-api.log"
check "... and the active client relays through this version's daemons" wait_for 10 relays
sleep 2

lab_traffic_stop
touch "$LAB_DIR/sample.stop"
wait $sampler
n=$(lab_capture_stop)
check_eq "no client packet crossed the WAN interface through the upgrade" "$n" "0"
total=$(wc -l <"$LAB_DIR/samples")
check "the kernel's active sets were sampled through it all ($total samples)" test "$total" -ge 40
check_eq "every sample: exactly the active clients, none blocked, none opened" \
	"$(sort "$LAB_DIR/samples" | uniq -c | awk '{print $2}')" "$A|$A6"

# what the upgrade made of the install
ADMIN=$(lab_api_login admin admin-password-1)
check_eq "every mapping is organisation 1's, as it was" \
	"$(lab_api GET /api/v1/mappings -H "$ADMIN" | cut -d' ' -f2- | jq -c '[.items[] | [.client_ip, .state]] | sort')" \
	"$(jq -cn --arg a $A --arg a6 $A6 --arg b $B --arg b6 $B6 --arg d $D \
		'[[$a, "active"], [$a6, "active"], [$b, "blocked"], [$b6, "blocked"], [$d, "blocked"]] | sort')"
check_eq "organisation 1 owns the LAN network and the IPv6 clients" \
	"$(lab_api GET /api/v1/orgs/1 -H "$ADMIN" | cut -d' ' -f2- | jq -c '[.name, .networks]')" '["default",["192.168.2.0/24","::/0"]]'
check_eq "the admin is a superadmin, the viewer a viewer of organisation 1" \
	"$(lab_api GET /api/v1/users -H "$ADMIN" | cut -d' ' -f2- | jq -c '[.items[] | [.username, .superadmin, .orgs[0].role]]')" \
	'[["admin",true,"admin"],["watcher",false,"viewer"]]'
finish
