# bench/lib.sh - what the benchmarks share (sourced after tests/lab.sh; not a benchmark itself).

# The lab, with the port space wide and TIME_WAIT sockets reused in its namespaces: runs of
# Connection: close requests leave tens of thousands of them, and the relay measured later must
# not pay for the earlier runs.
bench_lab_up() {
	lab_up >/dev/null || return 1
	for n in lan gw wan; do
		lab_exec $n sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
	done
}

# The relay benchmarks' lab: bench_lab_up, nginx, dante, and pgw's DB with dante (proxy 1, up,
# taking pipelined handshakes and the client's first bytes, as pgw-healthd finds it does) for
# the client 192.168.2.10.
bench_dante_lab() {
	bench_lab_up || return 1
	lab_start_nginx >/dev/null || return 1
	lab_start_dante >/dev/null || return 1
	lab_pgw_env
	sqlite3 "$PGW_DB" "INSERT INTO proxies (id, name, type, host, port) VALUES (1, 'dante', 'socks5', '$LAB_DANTE', 1080);
	    UPDATE proxy_health SET status = 'up', pipelining = 1, early_data = 1, fresh_until = unixepoch() + 86400;
	    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1);"
}

# bench_redsocks PROXY_IP [BASE_OPTS [REDSOCKS_OPTS]]: Debian's redsocks on the forwarder's port
# (pgw-agent's ruleset redirects to it), relaying to the SOCKS5 proxy at PROXY_IP:1080, with
# every descriptor the machine allows; RS: its pid, once it listens.
bench_redsocks() {
	cat >"$LAB_DIR/redsocks.conf" <<-CONF
	base { log_debug = off; log_info = off; log = stderr; daemon = off; redirector = iptables; ${2:-} }
	redsocks { local_ip = 0.0.0.0; local_port = ${PGW_FORWARDER_PORT:-12345}; ip = $1; port = 1080; type = socks5; ${3:-} }
	CONF
	lab_bg gw redsocks bash -c "ulimit -n \$(ulimit -Hn); exec redsocks -c $LAB_DIR/redsocks.conf"
	RS=$LAB_LAST_PID
	lab_wait_port gw 127.0.0.1 "${PGW_FORWARDER_PORT:-12345}" >/dev/null
}
