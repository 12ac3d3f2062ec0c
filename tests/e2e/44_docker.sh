#!/usr/bin/env bash
# Scenario (issue 15): the image of compose/Dockerfile is built and the stack of
# compose/docker-compose.yml is run as docs/DEPLOYMENT.md says, with Debian's docker.io and
# docker-compose. The daemons come up healthy in their containers, a client in the lab is relayed
# through its proxy, the agent holds CAP_NET_ADMIN alone as the service user, and the kill switch
# holds: the proxy dies, its client is blocked, and no client packet crosses the WAN interface.
#
# Docker, not podman: Debian's dockerd and runc work on these machines; podman's crun asks for
# RLIMIT_NPROC, which root here may not raise. Docker Hub is not reachable, so the two base images
# (debian:12, debian:12-slim) are one Debian 12 made with debootstrap from the machine's Debian
# mirror and imported. Two dockerd runs share one data root in the lab directory, neither touching
# the host's ruleset (--iptables=false, --ip6tables=false, --bridge=none, --ip-forward=false):
# the build's, in the host's network namespace (apt in the build reaches Debian's mirror; its own
# mount namespace), and the stack's, in the lab's gw namespace, whose "host network" is then the
# lab gateway. The one change to the compose file: the forwarder's descriptor limit is this
# machine's hard limit (root here has no CAP_SYS_RESOURCE to raise it to 1048576).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
lab_start_peers || { echo "# peers failed to start"; exit 1; }
DOCKER=/usr/bin/docker
D=$LAB_DIR/docker
mkdir -p "$D/data" "$D/exec"
export DOCKER_HOST=unix://$D/docker.sock
PROJECT=pgwt-$LAB_ID
dk() { "$DOCKER" "$@"; }
dc() { docker-compose -p "$PROJECT" -f "$D/compose/docker-compose.yml" -f "$D/compose/override.yml" "$@"; }
# `docker compose exec -T SERVICE CMD...` through docker's own client, its standard input
# attached only with -i (with it attached and at its end, docker-compose 1.29's and docker
# 20.10's exec now and then returned without the command's output here)
dce() { # [-i] service cmd...
	local c i=()
	[ "$1" = -i ] && { i=(-i); shift; }
	c=$(dc ps -q "$1") && [ -n "$c" ] || return 1
	shift
	dk exec "${i[@]}" "$c" "$@"
}

# dockerd in the network namespace of lab host NS (host: the host's own), in a mount namespace of
# its own (its mounts vanish with it; not `ip netns exec`, whose fresh /sys has no cgroups),
# remembered for lab_down; waits until it answers.
dockerd_start() { # ns
	local net=()
	[ "$1" = host ] || net=(nsenter "--net=/run/netns/$(lab_ns "$1")")
	: >"$LAB_DIR/dockerd-$1.log"
	"${net[@]}" unshare -m --propagation slave dockerd --data-root "$D/data" --exec-root "$D/exec" \
		-H "$DOCKER_HOST" --pidfile "$D/dockerd.pid" --iptables=false --ip6tables=false --ip-forward=false \
		--ip-masq=false --bridge=none >>"$LAB_DIR/dockerd-$1.log" 2>&1 &
	DOCKERD_PID=$!
	echo "$DOCKERD_PID dockerd-$1" >>"$LAB_DIR/pids"
	wait_for 30 dk version
}
# Stop dockerd and wait for it (it stops its containerd and their shims first).
dockerd_stop() {
	kill -TERM "$DOCKERD_PID" 2>/dev/null
	wait_for 30 bash -c "! kill -0 $DOCKERD_PID 2>/dev/null"
}

# ---- the base image: Debian 12 from the machine's Debian mirror ----
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\/*\)$/\1/p; s/^deb \(http[^ ]*\/debian\/*\) bookworm .*/\1/p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
quiet() { # log cmd...: CMD's output to LAB_DIR/LOG, its end to stderr if it fails
	local log=$LAB_DIR/$1
	shift
	"$@" >"$log" 2>&1 || { tail -n 30 "$log" | sed 's/^/#   /' >&2; return 1; }
}
check "debootstrap makes a Debian 12 root from $mirror" \
	quiet debootstrap.log debootstrap --variant=minbase bookworm "$D/rootfs" "$mirror"
check "dockerd starts in the host's network namespace (for the build's apt)" dockerd_start host
tar -C "$D/rootfs" -c . | dk import - debian:12 >/dev/null && dk tag debian:12 debian:12-slim
rm -rf "$D/rootfs"
check_eq "the base images debian:12 and debian:12-slim are that root" \
	"$(dk run --rm --network none debian:12-slim cat /etc/debian_version | cut -d. -f1)" "12"

# ---- the image, as `docker compose up --build` builds it ----
check "docker build of compose/Dockerfile succeeds" \
	quiet build.log dk build --network host -f "$ROOT/compose/Dockerfile" -t pgw:latest "$ROOT"
check_eq "the image runs its binaries as pgw (the runtime's /lib is still Debian's: the loader is there)" \
	"$(dk run --rm --network none pgw:latest sh -c 'id -un; pgwctl --help >/dev/null && echo runs')" "pgw
runs"
check "dockerd of the build stops" dockerd_stop

# ---- the stack in the lab gateway ----
n=$(lab_capture_control)
check "control: before pgw, an unmapped client's packets cross the WAN interface ($n seen)" test "$n" -gt 0
lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft" # DEPLOYMENT.md: on the host, at boot
mkdir -p "$D/compose"
cp "$ROOT/compose/docker-compose.yml" "$D/compose/"
nofile=$(ulimit -Hn)
cat >"$D/compose/override.yml" <<EOF
services:
  forwarder:
    ulimits: {nofile: {soft: $nofile, hard: $nofile}}
EOF
cat >"$D/compose/pgw.env" <<EOF
PGW_JWT_SECRET=docker-jwt-secret-0123456789abcdef0123456789
PGW_LAN_IFACE=ens19
PGW_WAN_IFACE=eth0
PGW_LAN_CIDR=192.168.2.0/24
PGW_HEALTH_URL=http://$LAB_WEB/ip
PGW_HEALTH_INTERVAL=2
PGW_HEALTH_TIMEOUT=1
PGW_FORWARDER_WORKERS=2
EOF
check "dockerd starts in the lab gateway's namespace on the same data root" dockerd_start gw
check "docker-compose up -d starts the stack (the image is the one built)" quiet compose-up.log dc up -d --no-build
healthy() {
	local s c n=0
	for s in agent forwarder healthd api; do
		c=$(dc ps -q "$s" 2>/dev/null) && [ -n "$c" ] || return 1
		[ "$(dk inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)" = healthy ] && n=$((n + 1))
	done
	[ "$n" = 4 ]
}
check "migrate ran first and exited 0" \
	test "$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(dc ps -aq migrate)" 2>/dev/null)" = "exited 0"
check "agent, forwarder, healthd and api all report healthy (their healthchecks)" wait_for 60 healthy ||
	{ dc ps; dc logs --tail 20; } 2>&1 | sed 's/^/#   /'
# each daemon is its container's process 1: its user ids (real, effective, saved, fs) and capabilities
ids() {
	dce "$1" grep -E "^(Uid|CapEff):" /proc/1/status |
		awk -v u="$(dce "$1" id -u pgw)" '{ $1 = $1; for (i = 2; i <= NF; i++) if ($i == u) $i = "pgw"; printf "%s ", $0 }'
}
check_eq "the agent is the service user holding CAP_NET_ADMIN alone (PGW_DROP_ROOT)" \
	"$(ids agent)" "Uid: pgw pgw pgw pgw CapEff: 0000000000001000 "
check_eq "the forwarder is the service user with no capability" \
	"$(ids forwarder)" "Uid: pgw pgw pgw pgw CapEff: 0000000000000000 "

# the first admin as DEPLOYMENT.md has it, then a proxy and a client through the API
echo docker-admin-pw1 | dce -i api pgwctl user add admin --role admin --password-stdin >/dev/null
AUTH=$(lab_api_login admin docker-admin-pw1)
J='Content-Type: application/json'
out=$(lab_api POST /api/v1/proxies -H "$AUTH" -H "$J" -d "{\"name\":\"socks-auth\",\"type\":\"socks5\",\"host\":\"$LAB_SOCKS_AUTH\",\"port\":1080,\"username\":\"$LAB_PROXY_USER\",\"password\":\"$LAB_PROXY_PASS\"}")
check_match "the API in its container adds a proxy" "$out" '^201 '
pid=$(cut -d' ' -f2- <<<"$out" | jq -r .id)
check_match "... and maps client 192.168.2.10 to it" \
	"$(lab_api POST /api/v1/mappings -H "$AUTH" -H "$J" -d "{\"client_ip\":\"192.168.2.10\",\"proxy_id\":$pid}")" '^201 '
relayed() { [ "$(lab_exec lan curl -s -m 2 --interface 192.168.2.10 "http://$LAB_WEB/ip")" = "$LAB_SOCKS_AUTH" ]; }
check "the client is relayed through its proxy (the web server sees the proxy's address)" wait_for 15 relayed
rc=0
lab_exec lan curl -s -m 3 --interface 192.168.2.13 "http://$LAB_WEB/ip" >/dev/null 2>&1 || rc=$?
check_eq "an unmapped client's TCP is refused" "$rc" "7"

# the kill switch: the proxy dies; healthd and the agent, in their containers, block its client
lab_capture_start docker || exit 1
lab_stop_pid "$(awk '$2 == "microsocks-auth" {print $1}' "$LAB_DIR/pids")"
lab_traffic_start 192.168.2.10 fd00:2::10
check "the client of the dead proxy is blocked in the kernel" \
	wait_for 10 bash -c "ip netns exec $(lab_ns gw) nft list set inet pgw blocked4 | grep -qw 192.168.2.10"
lab_traffic_stop
lab_client_tries 192.168.2.13 fd00:2::13
rc=0
lab_exec lan curl -s -m 3 --interface 192.168.2.10 "http://$LAB_WEB/ip" >/dev/null 2>&1 || rc=$?
check_eq "... its TCP is refused at once" "$rc" "7"
n=$(lab_capture_stop)
check_eq "0 client packets crossed the WAN interface" "$n" "0"

check "docker-compose down stops and removes the stack" quiet compose-down.log dc down -v
check "dockerd of the stack stops" dockerd_stop
finish
