#!/usr/bin/env bash
# Scenario: deployment files. make install into a temporary tree; systemd-analyze verify is
# clean on every unit; capabilities only where needed; the compose file validates with
# Debian's docker-compose; daemons signal readiness to systemd (Type=notify); make uninstall
# removes what install added. Nothing here touches the host's system directories or users.
set -u
. "$(dirname "$0")/lib.sh"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$ROOT" || exit 1
check "make install into a temporary tree" \
	make -s install PREFIX="$t/usr" SYSCONFDIR="$t/etc" UNITDIR="$t/units" CREATE_USER=0
units=$(ls "$t"/units/pgw.target "$t"/units/pgw-*.service)
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify $units 2>&1)
check_eq "systemd-analyze verify is clean on all $(echo "$units" | wc -w) units" "$out" ""
check "binaries, web files, env template and failsafe installed" test -x "$t/usr/sbin/pgw-agent" -a -x "$t/usr/bin/pgwctl" \
	-a -d "$t/usr/share/pgw/web" -a -f "$t/etc/pgw/pgw.env" -a -f "$t/etc/pgw/pgw-failsafe.nft"
for d in agent forwarder healthd api; do
	check "pgw-$d: Type=notify, User=pgw, NoNewPrivileges, ProtectSystem=strict" \
		grep -q -z 'Type=notify.*User=pgw.*NoNewPrivileges=yes.*ProtectSystem=strict' "$t/units/pgw-$d.service"
done
check_eq "pgw-agent: CAP_NET_ADMIN and nothing else" "$(grep -c '^CapabilityBoundingSet=CAP_NET_ADMIN$' "$t/units/pgw-agent.service")" "1"
for d in forwarder healthd api; do
	check_eq "pgw-$d: no capability" "$(grep -c '^CapabilityBoundingSet=$' "$t/units/pgw-$d.service")" "1"
done
check "the TPROXY drop-in for the forwarder adds only CAP_NET_ADMIN" \
	grep -q '^CapabilityBoundingSet=CAP_NET_ADMIN$' "$t/usr/share/pgw/pgw-forwarder-tproxy.conf"
check "the failsafe unit runs before the network" grep -q '^Before=network-pre.target' "$t/units/pgw-failsafe.service"
echo 'PGW_JWT_SECRET=compose-secret-0123456789abcdef01234567' >"$ROOT/compose/pgw.env"
check "docker-compose config validates compose/docker-compose.yml" \
	docker-compose -f "$ROOT/compose/docker-compose.yml" config -q
cfg=$(docker-compose -f "$ROOT/compose/docker-compose.yml" config 2>/dev/null)
check_eq "compose: only the agent runs as root and only it gets NET_ADMIN (the image's user is pgw)" \
	"$(grep -c 'user: root' <<<"$cfg") $(grep -c 'NET_ADMIN' <<<"$cfg") $(grep -c '^USER pgw$' "$ROOT/compose/Dockerfile")" "1 1 1"
agent=$(sed -n '/^  agent:/,/^  [a-z]*:$/p' <<<"$cfg" | sed '$d')
check_eq "compose: the agent becomes pgw at once (PGW_DROP_ROOT), given SETUID and SETGID to switch, nobody else" \
	"$(grep -c 'PGW_DROP_ROOT: "true"' <<<"$agent") $(grep -c -- '- SET[UG]ID' <<<"$agent") $(grep -c 'PGW_DROP_ROOT\|SET[UG]ID' <<<"$cfg")" "1 2 3"
check_eq "compose: the api's healthcheck is the installed script" \
	"$(grep -c -- '- /usr/share/pgw/pgw-api-healthcheck' <<<"$cfg")" "1"
rm -f "$ROOT/compose/pgw.env"

# Type=notify: READY=1 reaches $NOTIFY_SOCKET once the daemon is up
export PGW_DB=$t/pgw.db PGW_RUN_DIR=$t/run
"$t/usr/bin/pgwctl" migrate >/dev/null
socat -u UNIX-RECVFROM:"$t/notify.sock",fork OPEN:"$t/notify.log",creat,append &
sp=$!
wait_for 3 test -S "$t/notify.sock"
for u in agent api forwarder healthd; do
	check "pgw-$u.service has a watchdog (WatchdogSec=)" grep -q '^WatchdogSec=[0-9]' "$t/units/pgw-$u.service"
done
NOTIFY_SOCKET=$t/notify.sock WATCHDOG_USEC=1000000 "$t/usr/sbin/pgw-healthd" >"$t/healthd.log" 2>&1 &
hp=$!
check "pgw-healthd tells systemd READY=1" wait_for 5 grep -q 'READY=1' "$t/notify.log"
wd() { grep -o 'WATCHDOG=1' "$t/notify.log" | wc -l; } # datagrams, no newlines
check "... and WATCHDOG=1 from its event loop, every half period (WATCHDOG_USEC=1 s)" \
	wait_for 3 bash -c "[ \$(grep -o WATCHDOG=1 $t/notify.log | wc -l) -ge 3 ]"
kill -STOP $hp
# a datagram sent just before the stop may still be on its way through a socat child: the
# count once it has held for 0.5 s (a running daemon sends one every 0.5 s)
n1=$(wd)
for _ in 1 2 3 4 5 6; do
	sleep 0.5
	[ "$(wd)" = "$n1" ] && break
	n1=$(wd)
done
sleep 1.5
check_eq "a stopped (wedged) daemon sends no WATCHDOG=1: systemd would kill and restart it" "$(wd)" "$n1"
kill -CONT $hp
check "... and sends again when it runs" wait_for 3 bash -c "[ \$(grep -o WATCHDOG=1 $t/notify.log | wc -l) -gt $n1 ]"
kill -TERM $hp
wait $hp
check "... and STOPPING=1 on SIGTERM" wait_for 3 grep -q 'STOPPING=1' "$t/notify.log"
kill $sp 2>/dev/null
wait $sp 2>/dev/null

# The api container's healthcheck asks pgw-api where PGW_API_LISTEN says, over HTTPS with
# PGW_TLS_CERT: a wildcard address on loopback, IPv6 too (in a network namespace of its own)
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=pgw.example \
	-keyout "$t/key.pem" -out "$t/cert.pem" -days 2 2>/dev/null
hc=$(T=$t unshare --net bash -c '
	ip link set lo up
	export PGW_JWT_SECRET=compose-secret-0123456789abcdef01234567 PGW_WEB_DIR=$T/usr/share/pgw/web
	HC=$T/usr/share/pgw/pgw-api-healthcheck
	up() { for _ in $(seq 50); do grep -q "listening on" "$1" && return; sleep 0.1; done; }
	PGW_TLS_CERT=$T/cert.pem PGW_TLS_KEY=$T/key.pem PGW_API_LISTEN=0.0.0.0:18443 "$T/usr/sbin/pgw-api" >"$T/api1.log" 2>&1 &
	p=$!; up "$T/api1.log"
	PGW_TLS_CERT=$T/cert.pem PGW_API_LISTEN=0.0.0.0:18443 "$HC" 2>/dev/null; printf "%s " $?
	PGW_API_LISTEN=0.0.0.0:18443 "$HC" 2>/dev/null; printf "%s " $? # (asked without TLS)
	kill $p; wait $p
	PGW_API_LISTEN=[::1]:18080 "$T/usr/sbin/pgw-api" >"$T/api2.log" 2>&1 &
	p=$!; up "$T/api2.log"
	PGW_API_LISTEN=[::]:18080 "$HC" 2>/dev/null; printf "%s " $?
	kill $p; wait $p
	PGW_API_LISTEN=[::1]:18080 "$HC" 2>/dev/null; printf "%s " $?
	# a specific address outside api_allow (lan_cidr): asked from loopback, which is admitted
	ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up &&
		ip addr add 10.99.0.1/24 dev v0 && ip -6 addr add fd99::1/64 dev v0 nodad
	for l in 10.99.0.1:18444 [fd99::1]:18444; do
		PGW_TLS_CERT=$T/cert.pem PGW_TLS_KEY=$T/key.pem PGW_API_LISTEN=$l "$T/usr/sbin/pgw-api" >"$T/api3.log" 2>&1 &
		p=$!; up "$T/api3.log"
		PGW_TLS_CERT=$T/cert.pem PGW_API_LISTEN=$l "$HC" 2>/dev/null; printf "%s " $?
		kill $p; wait $p; : >"$T/api3.log"
	done')
check_eq "the api healthcheck: healthy over HTTPS on 0.0.0.0 (asked on 127.0.0.1), not without TLS; healthy on [::]; not once pgw-api stopped; healthy over HTTPS on a LAN address of each family outside api_allow" \
	"$(sed 's/[1-9][0-9]*/fail/g' <<<"$hc")" "0 fail 0 fail 0 0 "

# uninstall flushes table inet pgw: only ever inside a network namespace of this test
check "make uninstall (in its own network namespace, where it flushes the table)" \
	unshare --net make -s uninstall PREFIX="$t/usr" SYSCONFDIR="$t/etc" UNITDIR="$t/units" FLUSH=1
check_eq "... leaves no binary, unit or data file (the env file and the DB stay)" \
	"$(find "$t/usr" "$t/units" -type f | wc -l) $(test -f "$t/etc/pgw/pgw.env" && echo kept)" "0 kept"
finish
