#!/usr/bin/env bash
# Scenario (issue 15): the image of compose/Dockerfile is built and the stack of
# compose/docker-compose.yml is run as docs/DEPLOYMENT.md says, with the machine's Docker (Debian's
# docker.io unless it has Docker CE) and Debian's docker-compose (1.29: the v1 command; `docker
# compose` reads the same file). The daemons come
# up healthy in their containers, a client in the lab is relayed through its proxy, the agent
# holds CAP_NET_ADMIN alone as the service user, and the kill switch holds: the proxy dies, its
# client is blocked, and no client packet crosses the WAN interface.
#
# Docker, not podman: Debian's dockerd and runc work on these machines; podman's crun asks for
# RLIMIT_NPROC, which root here may not raise. Docker Hub is not reachable, so the two base images
# (debian:12, debian:12-slim) are one Debian 12 made with debootstrap from the machine's Debian
# mirror and imported. dockerd runs in the lab gateway's namespace (see dockerd_start), its data
# in the lab directory; the build's apt reaches the mirror through an HTTP proxy on the host's
# loopback, bridged into the lab gateway by a socket. The one change to the compose file: the
# forwarder's descriptor limit is this machine's hard one (root here may not raise it to 1048576).
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"
lab_up || { echo "# lab_up failed"; exit 1; }
lab_start_peers || { echo "# peers failed to start"; exit 1; }
DOCKER=/usr/bin/docker
TINI=$(command -v tini || command -v docker-init) # (Debian's docker.io; Docker CE's)
D=$LAB_DIR/docker
mkdir -p "$D/data" "$D/exec"
export DOCKER_HOST=unix://$D/docker.sock
PROJECT=pgwt-$LAB_ID
dk() { "$DOCKER" "$@"; }
dc() { docker-compose -p "$PROJECT" -f "$D/compose/docker-compose.yml" -f "$D/compose/override.yml" "$@"; }
# A command's output from a service's container, through docker's own client, its standard input
# not attached (attached and at its end, docker-compose 1.29's and docker 20.10's exec now and
# then returned without the command's output here)
dce() { # service cmd...
	local c
	c=$(dc ps -q "$1") && [ -n "$c" ] || return 1
	shift
	dk exec "$c" "$@"
}

# One dockerd, in the lab gateway's network namespace (its "host network" is the lab gateway's),
# with a mount and PID namespace of its own: tmpfs over /run and /etc/docker there, so neither
# the host's containerd nor its Docker is seen or touched and every socket, key and mount goes
# when it does; tini its PID 1, so that killing the namespace (unshare --kill-child) ends
# dockerd, containerd, the shims and the containers together. Containers' cgroups under
# /PROJECT, removed afterwards. The host's ruleset, routes and links are not touched
# (--iptables=false, --ip6tables=false, --bridge=none, --ip-forward=false).
dockerd_start() {
	: >"$LAB_DIR/dockerd.log"
	AA=/sys/kernel/security/apparmor
	AA_HAD=$(grep -c '^docker-default ' "$AA/profiles" 2>/dev/null)
	nsenter "--net=/run/netns/$(lab_ns gw)" unshare -m -p --kill-child --mount-proc --propagation slave \
		"$TINI" -- sh -c 'mount -t tmpfs -o mode=755 tmpfs /run &&
		{ [ ! -d /etc/docker ] || mount -t tmpfs -o mode=700 tmpfs /etc/docker; } && exec dockerd "$@"' dockerd \
		--data-root "$D/data" --exec-root "$D/exec" -H "$DOCKER_HOST" --iptables=false --ip6tables=false \
		--ip-forward=false --ip-masq=false --bridge=none --cgroup-parent "/$PROJECT" --shutdown-timeout 5 \
		>>"$LAB_DIR/dockerd.log" 2>&1 &
	DOCKERD_NS=$!
	wait_for 30 dk version && [ "$(ip netns identify "$DOCKERD_NS")" = "$(lab_ns gw)" ]
}
# Stop dockerd (SIGTERM to tini, which hands it on: the containers stop first), waiting up to
# WAIT seconds (on the way out, before lab_down: 3); then the namespace is killed with whatever
# is left, and the cgroups go, and the AppArmor profile dockerd loaded if there was none.
# Fails when dockerd had to be killed or a cgroup is left.
dockerd_stop() { # [wait]
	local init d rc=0
	[ -n "${DOCKERD_NS:-}" ] && jobs -pr | grep -qx "$DOCKERD_NS" || { DOCKERD_NS=; return 0; }
	init=$(cat "/proc/$DOCKERD_NS/task/$DOCKERD_NS/children" 2>/dev/null)
	[ -n "$init" ] && kill -TERM $init 2>/dev/null
	wait_for "${1:-30}" bash -c "! kill -0 $DOCKERD_NS 2>/dev/null" || { rc=1; kill -KILL "$DOCKERD_NS" 2>/dev/null; }
	wait "$DOCKERD_NS" 2>/dev/null
	DOCKERD_NS=
	for d in /sys/fs/cgroup/"$PROJECT" /sys/fs/cgroup/*/"$PROJECT"; do # (cgroup v2; v1)
		[ -d "$d" ] && ! wait_for 5 bash -c "find '$d' -depth -type d -exec rmdir {} + 2>/dev/null; [ ! -d '$d' ]" && rc=1
	done
	if [ "${AA_HAD:-1}" = 0 ] && grep -q '^docker-default ' "$AA/profiles" 2>/dev/null; then
		printf docker-default >"$AA/.remove"
	fi
	return $rc
}
trap 'trap "" INT TERM; dockerd_stop 3; lab_down' EXIT

quiet() { # log cmd...: CMD's output to LAB_DIR/LOG, its end to stderr if it fails
	local log=$LAB_DIR/$1
	shift
	"$@" >"$log" 2>&1 || { tail -n 30 "$log" | sed 's/^/#   /' >&2; return 1; }
}

# ---- apt for the build: the lab gateway reaches an HTTP proxy (tinyproxy, on the host's
# loopback) through a socket in the lab directory, so the build's apt reaches Debian's mirror
# while nothing else of the host's network is the gateway's ----
port=$((40000 + RANDOM % 20000))
printf '%s\n' "Port $port" "Listen 127.0.0.1" "Allow 127.0.0.1" "Timeout 120" "MaxClients 32" "LogLevel Warning" \
	"PidFile \"$D/tinyproxy.pid\"" >"$D/tinyproxy.conf"
: >"$LAB_DIR/apt-proxy.log"
tinyproxy -d -c "$D/tinyproxy.conf" >>"$LAB_DIR/apt-proxy.log" 2>&1 &
echo "$! apt-proxy" >>"$LAB_DIR/pids"
socat "UNIX-LISTEN:$D/apt.sock,fork,mode=600" "TCP:127.0.0.1:$port" >>"$LAB_DIR/apt-proxy.log" 2>&1 &
echo "$! apt-proxy-socket" >>"$LAB_DIR/pids"
lab_bg gw apt-bridge socat TCP-LISTEN:3142,bind=127.0.0.1,fork,reuseaddr "UNIX-CONNECT:$D/apt.sock"
proxy=http://127.0.0.1:3142
# (tinyproxy answers a request for itself with its own page: 200 or an error, never nothing)
check "the build's HTTP proxy answers in the lab gateway ($proxy)" \
	wait_for 10 lab_exec gw curl -s -o /dev/null -m 5 -x "$proxy" "http://127.0.0.1:$port/"

# ---- the base images: Debian 12 from the machine's Debian mirror (http; else deb.debian.org) ----
mirror=$(sed -n 's|^URIs: *\(http://[^ ]*/debian/*\)$|\1|p; s|^deb \(http://[^ ]*/debian/*\) bookworm .*|\1|p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
# (in a mount namespace of its own: the proc and sys it mounts in the new root go with it)
check "debootstrap makes a Debian 12 root from $mirror" \
	quiet debootstrap.log unshare -m --propagation private debootstrap --variant=minbase bookworm "$D/rootfs" "$mirror"
check "dockerd starts in the lab gateway's namespace" dockerd_start
tar -C "$D/rootfs" -c . | dk import - debian:12 >/dev/null && dk tag debian:12 debian:12-slim
rm -rf --one-file-system "$D/rootfs"
check_eq "the base images debian:12 and debian:12-slim are that Debian 12, one image" \
	"$(dk run --rm --network none debian:12-slim cat /etc/debian_version | cut -d. -f1) $(dk images -q debian | sort -u | wc -l)" "12 1"

# ---- the image, as `docker compose up --build` builds it ----
check "docker build of compose/Dockerfile succeeds" quiet build.log dk build --network host \
	--build-arg "http_proxy=$proxy" --build-arg "https_proxy=$proxy" -f "$ROOT/compose/Dockerfile" -t pgw:latest "$ROOT"
check_eq "the image runs its binaries as pgw, /lib and /lib64 still Debian's links (the loader is there)" \
	"$(dk run --rm --network none pgw:latest sh -c 'id -un; test -L /lib && test -L /lib64 && pgwctl --help >/dev/null && echo runs')" "pgw
runs"

# ---- the stack in the lab gateway ----
n=$(lab_capture_control)
check "control: before pgw, an unmapped client's packets cross the WAN interface ($n seen)" test "$n" -gt 0
check "the boot failsafe loads (DEPLOYMENT.md: on the host, at boot)" lab_exec gw nft -f "$ROOT/systemd/pgw-failsafe.nft"
mkdir -p "$D/compose"
cp "$ROOT/compose/docker-compose.yml" "$D/compose/"
nofile=$(ulimit -Hn)
printf '%s\n' "services:" "  forwarder:" "    ulimits: {nofile: {soft: $nofile, hard: $nofile}}" >"$D/compose/override.yml"
printf '%s\n' PGW_JWT_SECRET=docker-jwt-secret-0123456789abcdef0123456789 PGW_LAN_IFACE=ens19 PGW_WAN_IFACE=eth0 \
	PGW_LAN_CIDR=192.168.2.0/24 "PGW_HEALTH_URL=http://$LAB_WEB/ip" PGW_HEALTH_INTERVAL=2 PGW_HEALTH_TIMEOUT=1 \
	PGW_FORWARDER_WORKERS=2 >"$D/compose/pgw.env"
check "docker-compose up -d starts the stack (the image is the one built)" quiet compose-up.log dc up -d --no-build
DAEMONS="agent forwarder healthd api"
# running, never restarted, and its healthcheck (the notify socket; the API's /healthz) passing
healthy() {
	local s c
	for s in $DAEMONS; do
		c=$(dc ps -q "$s" 2>/dev/null) && [ -n "$c" ] || return 1
		[ "$(dk inspect -f '{{.State.Running}} {{.RestartCount}} {{.State.Health.Status}}' "$c")" = "true 0 healthy" ] ||
			return 1
	done
}
check "agent, forwarder, healthd and api run, never restarted, their healthchecks passing" wait_for 60 healthy ||
	{ dc ps; dc logs --tail 20; } 2>&1 | sed 's/^/#   /' >&2
ns_of() { date -d "$(dk inspect -f "{{.State.$2}}" "$(dc ps -aq "$1")")" +%s%N; } # service StartedAt|FinishedAt
migrated=$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(dc ps -aq migrate)")
first=$(for s in $DAEMONS; do [ "$(ns_of "$s" StartedAt)" -ge "$(ns_of migrate FinishedAt)" ] && echo "$s"; done | wc -l)
check_eq "migrate exited 0, before any daemon started" "$migrated $first" "exited 0 4"
# each daemon is its container's process 1: its user ids (real, effective, saved, fs), its
# permitted, effective and ambient capabilities, no new privileges
ids() {
	dce "$1" grep -E "^(Uid|CapPrm|CapEff|CapAmb|NoNewPrivs):" /proc/1/status |
		awk -v u="$(dce "$1" id -u pgw)" '{ $1 = $1; for (i = 2; i <= NF; i++) if ($i == u) $i = "pgw"; printf "%s ", $0 }'
}
check_eq "the agent is the service user holding CAP_NET_ADMIN alone (PGW_DROP_ROOT)" "$(ids agent)" \
	"Uid: pgw pgw pgw pgw CapPrm: 0000000000001000 CapEff: 0000000000001000 CapAmb: 0000000000000000 NoNewPrivs: 1 "
check_eq "the forwarder is the service user with no capability" "$(ids forwarder)" \
	"Uid: pgw pgw pgw pgw CapPrm: 0000000000000000 CapEff: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 "

# the first admin as DEPLOYMENT.md has it (`docker compose exec -T`), then a proxy and a client
# through the API
PW=docker-admin-pw1
printf '%s\n' "$PW" | dc exec -T api pgwctl user add admin --role admin --password-stdin >/dev/null 2>&1
AUTH=$(lab_api_login admin "$PW")
check_match "the first admin, added in the api container, signs in" "$AUTH" '^Authorization: Bearer [A-Za-z0-9_.-]{20,}$'
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
check_eq "an unmapped client's TCP is refused (not left to time out)" "$rc" "7"

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
check_eq "... its TCP is refused (not left to time out)" "$rc" "7"
n=$(lab_capture_stop)
check_eq "0 client packets crossed the WAN interface" "$n" "0"

check "docker-compose down stops and removes the stack" quiet compose-down.log dc down -v
check "dockerd stops within 30 s, its namespace and cgroups gone" dockerd_stop
finish
