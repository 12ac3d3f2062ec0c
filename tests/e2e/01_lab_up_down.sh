#!/usr/bin/env bash
# Scenario: the lab comes up with real peers, each proxy exits with its own address, and
# lab_down leaves no namespace and no process behind.
set -u
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/lab.sh"

lab_up || { echo "# lab_up failed"; exit 1; }
lab_start_peers || { echo "# peers failed to start"; exit 1; }
id=$LAB_ID
pids=$(awk '{print $1}' "$LAB_DIR/pids")

check "three namespaces exist" test "$(ip netns list | grep -c "^pgwt-$id-")" -eq 3

# Control: with no pgw rules the gateway forwards, so a client could reach the internet
# directly. This is what the kill switch must prevent; the lab makes a leak observable.
got=$(lab_exec lan curl -sS -m 5 --interface 192.168.2.10 http://$LAB_WEB/ip)
check_eq "without pgw, a client reaches the lab internet directly (leak observable)" "$got" "192.168.2.10"

up=$LAB_PROXY_USER:$LAB_PROXY_PASS
got=$(lab_exec gw curl -sS -m 5 --socks5 $up@$LAB_SOCKS_AUTH:1080 http://$LAB_WEB/ip)
check_eq "microsocks with auth exits with its own address" "$got" "$LAB_SOCKS_AUTH"
got=$(lab_exec gw curl -sS -m 5 --socks5 $LAB_SOCKS_NOAUTH:1080 http://$LAB_WEB/ip)
check_eq "microsocks without auth exits with its own address" "$got" "$LAB_SOCKS_NOAUTH"
got=$(lab_exec gw curl -sS -m 5 -p -x http://$up@$LAB_HTTP_PROXY:8888 http://$LAB_WEB/ip)
check_eq "tinyproxy CONNECT with Basic auth exits with its own address" "$got" "$LAB_HTTP_PROXY"
check_fails "microsocks refuses a wrong password" \
	lab_exec gw curl -sS -m 5 --socks5 $LAB_PROXY_USER:wrong@$LAB_SOCKS_AUTH:1080 http://$LAB_WEB/ip
code=$(lab_exec gw curl -s -o /dev/null -w '%{http_connect}' -m 5 -p -x http://$LAB_HTTP_PROXY:8888 http://$LAB_WEB/ip)
check_eq "tinyproxy answers 407 without credentials" "$code" "407"
got=$(lab_exec gw curl -sS -m 5 http://[$LAB_WEB6]/ip)
check_eq "the lab internet answers over IPv6" "$got" "2001:db8:100::1"

lab_down
check_eq "no namespace of this run is left" "$(ip netns list | grep -c "^pgwt-$id-")" "0"
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check_eq "no process of this run is left" "$alive" "0"
check "the lab directory is removed" test -z "$(ls -d /tmp/pgw-lab-$id.* 2>/dev/null)"
finish
