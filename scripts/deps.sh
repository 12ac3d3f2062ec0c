#!/bin/sh
# Install every Debian package the build, the tests, the benchmarks and the demo need.
# Fast when nothing is missing (no apt-get at all); otherwise apt-get update, then install.
# Services the packages would start (nginx, tinyproxy, danted, redsocks, unbound, keepalived,
# dockerd) are not started: the lab runs its own copies inside network namespaces.
set -eu

PKGS="build-essential pkg-config clang clang-format libclang-rt-14-dev
libsqlite3-dev sqlite3 libargon2-dev libjansson-dev libmicrohttpd-dev libjwt-dev libssl-dev libcurl4-openssl-dev libnftnl-dev libcap-ng-dev libmnl-dev libnetfilter-conntrack-dev libnetfilter-queue-dev
libcmocka-dev
dante-server microsocks tinyproxy nginx redsocks shadowsocks-libev keepalived
dnsmasq-base unbound dnsperf bind9-dnsutils libgnutls28-dev
curl iperf3 wrk jq strace tcpdump conntrack tzdata iputils-ping nftables iptables iproute2 procps psmisc util-linux socat openssl python3 python3-yaml docker-compose chromium
docker.io debootstrap"

# playwright-core for the browser tests (npm; Debian's chromium is the browser)
web_deps() {
	# every package tests/web/package.json names (a checkout from before one was added has the others)
	need=""
	for m in $(sed -n '/"dependencies"/,/}/s/^ *"\([^"]*\)": *"[^"]*",\{0,1\}$/\1/p' tests/web/package.json); do
		[ -f "tests/web/node_modules/$m/package.json" ] || need="$need $m"
	done
	[ -z "$need" ] && return 0
	echo "deps: npm install (tests/web)"
	(cd tests/web && npm install --no-audit --no-fund --silent) || { echo "deps: npm install failed" >&2; return 1; }
}

# Node.js for the browser tests: the machine's own if it has one, else Debian's
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# Docker for e2e 44: the machine's own Docker CE if it has one (docker.io would replace it), else
# Debian's; with a kernel that enforces AppArmor, Docker needs apparmor_parser to start containers
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
for p in docker-ce docker-ce-cli docker-ce-rootless-extras containerd.io; do
	installed "$p" && PKGS=$(echo "$PKGS" | sed 's/\bdocker\.io\b//')
done
had_containerd=0
installed containerd && had_containerd=1
grep -qs '^Y' /sys/module/apparmor/parameters/enabled && PKGS="$PKGS apparmor"

missing=""
for p in $PKGS; do
	installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	web_deps
	exit $?
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: run as root (or install sudo) to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi
# Keep package maintainer scripts from starting services (standard policy-rc.d convention),
# unless the host already has its own policy.
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	ours=1
fi
trap '[ "$ours" = 1 ] && $SUDO rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
# docker.io enables its services for the next boot: the tests run their own dockerd, in a lab
# namespace; a host dockerd would add its iptables chains and docker0. Only the units of what we
# installed (containerd too when it came with it).
case " $missing " in
*" docker.io "*)
	units="docker.service docker.socket"
	[ "$had_containerd" = 1 ] || units="$units containerd.service"
	command -v systemctl >/dev/null 2>&1 && $SUDO systemctl disable $units >/dev/null 2>&1 || true
	;;
esac
web_deps
echo "deps: done"
