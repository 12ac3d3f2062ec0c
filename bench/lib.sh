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

# bench_cap PCT PID: hold PID (every thread of it) to PCT % of one CPU over CAP_PERIOD_US
# (default 10 ms), in a CPU cgroup of the lab's own (cgroup v2's cpu.max, or v1's cpu controller;
# lab_down removes it): a relay measured where it is the busy part, rather than one of a chain
# sharing two cores. The first call's PCT holds for the run. Fails (1) where neither is there.
# Throttling itself raises a relay's CPU a connection (docs/PERFORMANCE.md): a second opinion,
# not the figure.
bench_cap() {
	local d=${LAB_CGROUP:-}
	if [ -z "$d" ]; then
		if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
			d=/sys/fs/cgroup/pgwbench-$LAB_ID
			grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
				echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
			mkdir "$d" 2>/dev/null && echo "$(($1 * ${CAP_PERIOD_US:-10000} / 100)) ${CAP_PERIOD_US:-10000}" >"$d/cpu.max" 2>/dev/null || { rmdir "$d" 2>/dev/null; return 1; }
		elif [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
			d=/sys/fs/cgroup/cpu/pgwbench-$LAB_ID
			mkdir "$d" 2>/dev/null && echo "${CAP_PERIOD_US:-10000}" >"$d/cpu.cfs_period_us" &&
				echo $(($1 * ${CAP_PERIOD_US:-10000} / 100)) >"$d/cpu.cfs_quota_us" || { rmdir "$d" 2>/dev/null; return 1; }
		else
			return 1
		fi
		LAB_CGROUP=$d
	fi
	echo "$2" >"$d/cgroup.procs"
}
