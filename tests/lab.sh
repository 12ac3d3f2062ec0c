#!/usr/bin/env bash
# tests/lab.sh - the test lab of DESIGN.md: three network namespaces with a unique prefix per
# run, real upstream proxies and an 'internet' web server, removed on exit even when a test
# fails or is interrupted. Source it, then:
#   lab_up            build namespaces, links, addresses, routes (call once)
#   lab_start_peers   microsocks (auth, no auth), tinyproxy (BasicAuth), nginx with /ip
#   lab_ns lan|gw|wan name of a namespace;  lab_exec lan|gw|wan CMD...  run inside it
#   lab_bg lan|gw|wan NAME CMD...  start CMD in the background, remembered for cleanup
#   lab_down          stop everything it started and delete the namespaces (runs on EXIT)
#   lab_api METHOD PATH [curl args]   pgw-api at 127.0.0.1:8080 in gw: prints "<status> <body>"
#
#   lan  (clients)  lan0: 192.168.2.10-.13/24, fd00:2::10-13/64; default via the gateway
#   gw   (pgw)      ens19: 192.168.2.1/24 fd00:2::1/64   eth0: 198.51.100.1/24 2001:db8:100::1/64
#   wan  (outside)  wan0: 198.51.100.254/24 + one address per proxy; lo: 203.0.113.10 ("internet")
# The wan side routes 192.168.2.0/24 back to the gateway, so a client packet that the gateway
# forwarded would really get an answer: a leak would be a working leak, and the tests see it.
#
# Safety: nothing here touches the host's own network or ruleset; every address lives only
# inside these namespaces. Only processes this lab started (or that run inside its
# namespaces) are stopped, by PID.

LAB_PROXY_USER=pgwuser
LAB_PROXY_PASS=pgwpass
LAB_SOCKS_AUTH=198.51.100.10   # microsocks with username/password, port 1080
LAB_SOCKS_NOAUTH=198.51.100.11 # microsocks without auth, port 1080
LAB_HTTP_PROXY=198.51.100.12   # tinyproxy with BasicAuth, port 8888
LAB_DANTE=198.51.100.13        # dante-server (no auth), port 1080 (lab_start_dante)
LAB_DANTE6=2001:db8:100::13    # ... its IPv6 external address (where it relays IPv6 UDP from)
LAB_SS=198.51.100.14           # shadowsocks-libev's ss-local (SOCKS5 with UDP, -u), port 1080 (lab_start_ss)
LAB_SS_SERVER=198.51.100.15    # its ss-server, port 8388: the exit address of ss-local's traffic
LAB_BADSOCKS=198.51.100.16     # a SOCKS5 relay that answers in bad shapes first (udp_tool.py badsocks), port 1080
LAB_ECHO=203.0.113.20          # UDP echo servers (lab_start_udp_echo PORT), each datagram's source logged
LAB_WEB=203.0.113.10           # nginx: /ip echoes the caller's address, /files/ serves LAB_DIR/www/files, PUT /upload/
LAB_WEB6=2001:db8:203::10
LAB_DNS=203.0.113.53           # dnsmasq (lab_start_dns): the zone pgw.lab over UDP and TCP port 53, each query logged with its source
LAB_DOT=203.0.113.54           # unbound (lab_start_dot): the same zone over DNS-over-TLS, port 853, certificate for dot.pgw.lab (lab CA)
LAB_ZONE=pgw.lab
LAB_CLIENTS=(192.168.2.10 192.168.2.11 192.168.2.12 192.168.2.13)
# lab_start_peers' three proxies as proxies rows 1-3, for
# INSERT INTO proxies (id, name, type, host, port, username, password) VALUES $LAB_PEER_PROXIES, ...
LAB_PEER_PROXIES="(1, 'socks-auth', 'socks5', '$LAB_SOCKS_AUTH', 1080, '$LAB_PROXY_USER', '$LAB_PROXY_PASS'),
    (2, 'socks-open', 'socks5', '$LAB_SOCKS_NOAUTH', 1080, '', ''),
    (3, 'http-auth', 'http', '$LAB_HTTP_PROXY', 8888, '$LAB_PROXY_USER', '$LAB_PROXY_PASS')"

# The three peer proxies and dante (id 4), a client each (192.168.2.10 to .13), probed every
# 2 s (1 s when down; 1 s timeout): the capability probes' scenarios (e2e 17, 41). After
# lab_start_dante and lab_pgw_env (or lab_api_env).
lab_four_proxies() {
	"$PGW_BIN/pgwctl" settings set health_timeout 1 >/dev/null &&
		"$PGW_BIN/pgwctl" settings set health_interval 2 >/dev/null &&
		"$PGW_BIN/pgwctl" settings set health_down_interval 1 >/dev/null &&
		lab_db "INSERT INTO proxies (id, name, type, host, port, username, password) VALUES
		    $LAB_PEER_PROXIES, (4, 'dante', 'socks5', '$LAB_DANTE', 1080, '', '');
		    INSERT INTO mappings (client_ip, proxy_id) VALUES ('192.168.2.10', 1), ('192.168.2.11', 2),
		    ('192.168.2.12', 3), ('192.168.2.13', 4);"
}

lab_init() {
	[ "$(id -u)" = 0 ] || { echo "lab: needs root (network namespaces)" >&2; return 1; }
	LAB_ID=${LAB_ID:-p$(printf '%04x%02x' $((RANDOM)) $(($$ % 256)))}
	LAB_DIR=$(mktemp -d "/tmp/pgw-lab-$LAB_ID.XXXXXX")
	chmod 755 "$LAB_DIR"
	: >"$LAB_DIR/pids"
	trap 'lab_down' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

lab_ns() { echo "pgwt-$LAB_ID-$1"; }
lab_exec() { local ns; ns=$(lab_ns "$1"); shift; ip netns exec "$ns" "$@"; }

lab_bg() { # ns name cmd...
	local ns=$1 name=$2
	shift 2
	: >"$LAB_DIR/$name.log" # emptied before it returns: a wait for a line must not find the last run's
	ip netns exec "$(lab_ns "$ns")" "$@" >>"$LAB_DIR/$name.log" 2>&1 &
	echo "$! $name" >>"$LAB_DIR/pids"
	LAB_LAST_PID=$!
}

# Wait until addr:port accepts TCP inside ns (default 5 s).
lab_wait_port() { # ns addr port [seconds]
	local i
	for ((i = 0; i < ${4:-5} * 20; i++)); do
		lab_exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "lab: nothing listens on $2:$3 in $1" >&2
	return 1
}

lab_up() {
	lab_init || return 1
	# every step must work: a half-built lab would make tests pass or fail for the wrong reason
	(set -e; _lab_build) || { echo "lab: building the lab failed" >&2; return 1; }
}

# A lab namespace whose IPv6 addresses (link-local ones included) are valid at once: without
# duplicate address detection an address does not turn from tentative to valid a second or two
# after the test starts, an address change that Chromium (run in the gw namespace by the web
# tests) answers by failing the requests in flight (net::ERR_NETWORK_CHANGED)
_lab_ns_add() {
	ip netns add "$(lab_ns "$1")" || return 1
	ip netns exec "$(lab_ns "$1")" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

_lab_build() {
	local p=$LAB_ID ip n
	for n in lan gw wan; do _lab_ns_add $n || return 1; done
	for n in lan gw wan; do ip -n "$(lab_ns $n)" link set lo up; done
	# links are created in the root namespace under unique names, then moved and renamed
	ip link add "${p}a" type veth peer name "${p}b" || return 1
	ip link set "${p}a" netns "$(lab_ns lan)"
	ip link set "${p}b" netns "$(lab_ns gw)"
	ip link add "${p}c" type veth peer name "${p}d" || return 1
	ip link set "${p}c" netns "$(lab_ns gw)"
	ip link set "${p}d" netns "$(lab_ns wan)"
	ip -n "$(lab_ns lan)" link set "${p}a" name lan0
	ip -n "$(lab_ns gw)" link set "${p}b" name ens19
	ip -n "$(lab_ns gw)" link set "${p}c" name eth0
	ip -n "$(lab_ns wan)" link set "${p}d" name wan0

	for ip in "${LAB_CLIENTS[@]}"; do ip -n "$(lab_ns lan)" addr add "$ip/24" dev lan0; done
	for ip in 10 11 12 13; do ip -n "$(lab_ns lan)" addr add "fd00:2::$ip/64" dev lan0 nodad; done
	ip -n "$(lab_ns gw)" addr add 192.168.2.1/24 dev ens19
	ip -n "$(lab_ns gw)" addr add fd00:2::1/64 dev ens19 nodad
	ip -n "$(lab_ns gw)" addr add 198.51.100.1/24 dev eth0
	ip -n "$(lab_ns gw)" addr add 2001:db8:100::1/64 dev eth0 nodad
	_lab_wan_addrs
	ip -n "$(lab_ns lan)" link set lan0 up
	ip -n "$(lab_ns gw)" link set ens19 up
	ip -n "$(lab_ns gw)" link set eth0 up
	ip -n "$(lab_ns wan)" link set wan0 up

	ip -n "$(lab_ns lan)" route add default via 192.168.2.1
	ip -n "$(lab_ns lan)" -6 route add default via fd00:2::1
	ip -n "$(lab_ns gw)" route add default via 198.51.100.254
	ip -n "$(lab_ns gw)" -6 route add default via 2001:db8:100::254
	ip -n "$(lab_ns wan)" route add 192.168.2.0/24 via 198.51.100.1
	ip -n "$(lab_ns wan)" -6 route add fd00:2::/64 via 2001:db8:100::1
	lab_exec gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# The wan namespace's addresses on wan0 (its link, or the WAN bridge of an HA lab): the
# proxies', and the 'internet' on its loopback (no dummy links on every kernel).
_lab_wan_addrs() {
	local ip
	ip -n "$(lab_ns wan)" addr add 198.51.100.254/24 dev wan0
	ip -n "$(lab_ns wan)" addr add 2001:db8:100::254/64 dev wan0 nodad
	ip -n "$(lab_ns wan)" addr add "$LAB_DANTE6/64" dev wan0 nodad
	for ip in $LAB_SOCKS_AUTH $LAB_SOCKS_NOAUTH $LAB_HTTP_PROXY $LAB_DANTE $LAB_SS $LAB_SS_SERVER $LAB_BADSOCKS; do
		ip -n "$(lab_ns wan)" addr add "$ip/24" dev wan0
	done
	for ip in "$LAB_WEB/32" "$LAB_DNS/32" "$LAB_DOT/32" "$LAB_ECHO/32" "$LAB_WEB6/128"; do
		ip -n "$(lab_ns wan)" addr add "$ip" dev lo
	done
}

# An HA pair (issue 22): two gateways, gw (node 1) and gw2 (node 2), on one LAN and one WAN.
# The lan namespace holds the LAN switch (bridge lan0, the clients' addresses on it) and the
# wan namespace the WAN switch (bridge wan0). Each gateway: ens19 on the LAN (gw 192.168.2.2,
# gw2 192.168.2.3), eth0 on the WAN (198.51.100.1, .2). The clients' router is the virtual
# address 192.168.2.1, which keepalived moves between them. The WAN routes the LAN back via gw.
LAB_HA_VIP=192.168.2.1
LAB_HA_ADDR=(192.168.2.2 192.168.2.3)
LAB_HA_WAN=(198.51.100.1 198.51.100.2)
lab_ha_up() {
	lab_init || return 1
	(set -e; _lab_ha_build) || { echo "lab: building the HA lab failed" >&2; return 1; }
}

_lab_ha_build() {
	local p=$LAB_ID n i g
	for n in lan gw gw2 wan; do _lab_ns_add $n || return 1; done
	for n in lan gw gw2 wan; do ip -n "$(lab_ns $n)" link set lo up; done
	ip -n "$(lab_ns lan)" link add lan0 type bridge
	ip -n "$(lab_ns wan)" link add wan0 type bridge
	for i in 0 1; do
		g=$([ $i = 0 ] && echo gw || echo gw2)
		ip link add "${p}l$i" type veth peer name "${p}m$i"
		ip link set "${p}l$i" netns "$(lab_ns lan)"
		ip link set "${p}m$i" netns "$(lab_ns $g)"
		ip -n "$(lab_ns lan)" link set "${p}l$i" master lan0 up
		ip -n "$(lab_ns $g)" link set "${p}m$i" name ens19
		ip link add "${p}w$i" type veth peer name "${p}x$i"
		ip link set "${p}w$i" netns "$(lab_ns wan)"
		ip link set "${p}x$i" netns "$(lab_ns $g)"
		ip -n "$(lab_ns wan)" link set "${p}w$i" master wan0 up
		ip -n "$(lab_ns $g)" link set "${p}x$i" name eth0
		ip -n "$(lab_ns $g)" addr add "${LAB_HA_ADDR[$i]}/24" dev ens19
		ip -n "$(lab_ns $g)" addr add "${LAB_HA_WAN[$i]}/24" dev eth0
		ip -n "$(lab_ns $g)" link set ens19 up
		ip -n "$(lab_ns $g)" link set eth0 up
		ip -n "$(lab_ns $g)" route add default via 198.51.100.254
		ip netns exec "$(lab_ns $g)" sysctl -qw net.ipv4.ip_forward=1
	done
	for ip in "${LAB_CLIENTS[@]}"; do ip -n "$(lab_ns lan)" addr add "$ip/24" dev lan0; done
	ip -n "$(lab_ns lan)" link set lan0 up
	ip -n "$(lab_ns wan)" link set wan0 up
	_lab_wan_addrs
	ip -n "$(lab_ns lan)" route add default via $LAB_HA_VIP
	ip -n "$(lab_ns wan)" route add 192.168.2.0/24 via ${LAB_HA_WAN[0]}
}

lab_start_nginx() {
	mkdir -p "$LAB_DIR/www/files" "$LAB_DIR/www/upload" "$LAB_DIR/nginx-tmp"
	chmod -R 755 "$LAB_DIR/www" "$LAB_DIR/nginx-tmp"
	chmod 777 "$LAB_DIR/www/upload" "$LAB_DIR/nginx-tmp"
	echo "hello from the lab internet" >"$LAB_DIR/www/files/hello.txt"
	cat >"$LAB_DIR/nginx.conf" <<-CONF
	worker_processes 1;
	pid $LAB_DIR/nginx.pid;
	error_log $LAB_DIR/nginx-error.log;
	events { worker_connections 4096; }
	http {
	    access_log off;
	    client_body_temp_path $LAB_DIR/nginx-tmp/body;
	    proxy_temp_path $LAB_DIR/nginx-tmp/proxy;
	    fastcgi_temp_path $LAB_DIR/nginx-tmp/fastcgi;
	    uwsgi_temp_path $LAB_DIR/nginx-tmp/uwsgi;
	    scgi_temp_path $LAB_DIR/nginx-tmp/scgi;
	    keepalive_requests 100000;
	    server {
	        listen $LAB_WEB:80;
	        listen [$LAB_WEB6]:80;
	        location = / { default_type text/html; return 200 "<title>pgw lab</title><p>the lab internet</p>\n"; }
	        location = /ip { default_type text/plain; return 200 "\$remote_addr\n"; }
	        location /files/ { root $LAB_DIR/www; }
	        location /slow/ { alias $LAB_DIR/www/files/; limit_rate 256k; }
	        location /upload/ { root $LAB_DIR/www; dav_methods PUT; client_max_body_size 100m; }
	    }
	}
	CONF
	lab_bg wan nginx nginx -e "$LAB_DIR/nginx-error.log" -c "$LAB_DIR/nginx.conf" -g 'daemon off;'
	lab_wait_port wan $LAB_WEB 80
}

lab_start_peers() {
	lab_bg wan microsocks-auth microsocks -i $LAB_SOCKS_AUTH -p 1080 -u $LAB_PROXY_USER -P $LAB_PROXY_PASS -b $LAB_SOCKS_AUTH
	lab_bg wan microsocks-noauth microsocks -i $LAB_SOCKS_NOAUTH -p 1080 -b $LAB_SOCKS_NOAUTH
	cat >"$LAB_DIR/tinyproxy.conf" <<-CONF
	Port 8888
	Listen $LAB_HTTP_PROXY
	Bind $LAB_HTTP_PROXY
	Timeout 60
	MaxClients 1000
	BasicAuth $LAB_PROXY_USER $LAB_PROXY_PASS
	DisableViaHeader Yes
	LogLevel Notice
	LogFile "$LAB_DIR/tinyproxy-file.log"
	PidFile "$LAB_DIR/tinyproxy.pid"
	CONF
	lab_bg wan tinyproxy tinyproxy -d -c "$LAB_DIR/tinyproxy.conf"
	lab_start_nginx || return 1
	lab_wait_port wan $LAB_SOCKS_AUTH 1080 && lab_wait_port wan $LAB_SOCKS_NOAUTH 1080 &&
		lab_wait_port wan $LAB_HTTP_PROXY 8888
}

# dnsmasq, authoritative-like for pgw.lab on $LAB_DNS:53 (UDP and TCP): www -> $LAB_WEB (and
# $LAB_WEB6), big: TXT records over 1,232 bytes in all, huge: 40 of them (over 8 KB, TCP only);
# other names in the zone NXDOMAIN. Every query is logged as "query[TYPE] NAME from ADDRESS" in
# $LAB_DIR/dnsmasq.log.
lab_start_dns() {
	local txt i chunk
	chunk=$(printf 'x%.0s' $(seq 1 200))
	txt=""
	for i in 1 2 3 4 5 6 7 8; do txt="$txt --txt-record=big.$LAB_ZONE,$i$chunk"; done
	for i in $(seq 10 49); do txt="$txt --txt-record=huge.$LAB_ZONE,$i$chunk"; done
	# shellcheck disable=SC2086
	lab_bg wan dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
		--listen-address=$LAB_DNS --port=53 --user=root --pid-file="$LAB_DIR/dnsmasq.pid" \
		--log-queries=extra --log-facility="$LAB_DIR/dnsmasq-queries.log" --local=/$LAB_ZONE/ \
		--host-record=www.$LAB_ZONE,$LAB_WEB,$LAB_WEB6 --host-record=other.$LAB_ZONE,203.0.113.11 \
		--local-ttl=300 --neg-ttl=60 $txt
	lab_wait_port wan $LAB_DNS 53
}

# The sources dnsmasq saw queries from, one per line (sorted, unique).
lab_dns_sources() {
	sed -n 's/.* query\[[A-Z0-9]*\] [^ ]* from \([0-9a-f.:]*\)$/\1/p' "$LAB_DIR/dnsmasq-queries.log" 2>/dev/null | sort -u
}
# How many queries for NAME dnsmasq saw.
lab_dns_count() {
	grep -c " query\[[A-Z0-9]*\] $1 from " "$LAB_DIR/dnsmasq-queries.log" 2>/dev/null
}

# A lab CA ($LAB_DIR/ca.pem) and unbound serving pgw.lab over DNS-over-TLS on $LAB_DOT:853 with
# a certificate for dot.pgw.lab (and plainly on $LAB_DOT:53); each query logged (with its
# source) in $LAB_DIR/unbound-file.log.
lab_start_dot() {
	local d=$LAB_DIR/tls
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pgw lab CA" \
		-keyout "$d/ca.key" -out "$LAB_DIR/ca.pem" >/dev/null 2>&1 || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=dot.$LAB_ZONE" \
		-keyout "$d/dot.key" -out "$d/dot.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=DNS:dot.%s\nextendedKeyUsage=serverAuth\n' "$LAB_ZONE" >"$d/ext"
	openssl x509 -req -in "$d/dot.csr" -CA "$LAB_DIR/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext" -out "$d/dot.pem" >/dev/null 2>&1 || return 1
	chmod 644 "$d"/*
	cat >"$LAB_DIR/unbound.conf" <<-CONF
	server:
	    username: ""
	    chroot: ""
	    directory: "$LAB_DIR"
	    pidfile: "$LAB_DIR/unbound.pid"
	    use-syslog: no
	    logfile: "$LAB_DIR/unbound-file.log"
	    log-queries: yes
	    verbosity: 1
	    do-daemonize: no
	    interface: $LAB_DOT@853
	    interface: $LAB_DOT@53
	    tls-port: 853
	    tls-service-key: "$d/dot.key"
	    tls-service-pem: "$d/dot.pem"
	    do-ip6: no
	    access-control: 0.0.0.0/0 allow
	    local-zone: "$LAB_ZONE." static
	    local-data: "www.$LAB_ZONE. 300 IN A $LAB_WEB"
	    local-data: "tls.$LAB_ZONE. 300 IN A 203.0.113.12"
	$(for i in $(seq 10 49); do printf '    local-data: "huge.%s. 300 IN TXT %s%s"\n' "$LAB_ZONE" "$i" "$(printf 'y%.0s' $(seq 1 200))"; done)
	remote-control:
	    control-enable: no
	CONF
	lab_bg wan unbound unbound -d -c "$LAB_DIR/unbound.conf"
	lab_wait_port wan $LAB_DOT 853
}
# nginx with TLS on $LAB_WEB (an exit-IP echo at /ip): port 443 with a certificate of the lab
# CA ($LAB_DIR/ca.pem, made by lab_start_dot if it is not there) for the address $LAB_WEB, 8443
# with one of the lab CA for another name, 9443 with a self-signed one.
lab_start_https() {
	local d=$LAB_DIR/tls
	[ -s "$LAB_DIR/ca.pem" ] || {
		mkdir -p "$d"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pgw lab CA" \
			-keyout "$d/ca.key" -out "$LAB_DIR/ca.pem" >/dev/null 2>&1 || return 1
	}
	for c in web:IP:$LAB_WEB wrong:DNS:wrong.$LAB_ZONE; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${c%%:*}" \
			-keyout "$d/${c%%:*}.key" -out "$d/${c%%:*}.csr" >/dev/null 2>&1 || return 1
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "${c#*:}" >"$d/${c%%:*}.ext"
		openssl x509 -req -in "$d/${c%%:*}.csr" -CA "$LAB_DIR/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
			-extfile "$d/${c%%:*}.ext" -out "$d/${c%%:*}.pem" >/dev/null 2>&1 || return 1
	done
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$LAB_WEB" \
		-addext "subjectAltName=IP:$LAB_WEB" -keyout "$d/self.key" -out "$d/self.pem" >/dev/null 2>&1 || return 1
	chmod 644 "$d"/*
	cat >"$LAB_DIR/nginx-tls.conf" <<-CONF
	worker_processes 1;
	pid $LAB_DIR/nginx-tls.pid;
	error_log $LAB_DIR/nginx-tls-error.log;
	events { worker_connections 1024; }
	http {
	    access_log off;
	    client_body_temp_path $LAB_DIR/nginx-tmp/body-tls;
	    proxy_temp_path $LAB_DIR/nginx-tmp/proxy-tls;
	    fastcgi_temp_path $LAB_DIR/nginx-tmp/fastcgi-tls;
	    uwsgi_temp_path $LAB_DIR/nginx-tmp/uwsgi-tls;
	    scgi_temp_path $LAB_DIR/nginx-tmp/scgi-tls;
	    server { listen $LAB_WEB:443 ssl; ssl_certificate $d/web.pem; ssl_certificate_key $d/web.key;
	             location = /ip { default_type text/plain; return 200 "\$remote_addr\n"; } }
	    server { listen $LAB_WEB:8443 ssl; ssl_certificate $d/wrong.pem; ssl_certificate_key $d/wrong.key;
	             location = /ip { default_type text/plain; return 200 "\$remote_addr\n"; } }
	    server { listen $LAB_WEB:9443 ssl; ssl_certificate $d/self.pem; ssl_certificate_key $d/self.key;
	             location = /ip { default_type text/plain; return 200 "\$remote_addr\n"; } }
	}
	CONF
	lab_bg wan nginx-tls nginx -e "$LAB_DIR/nginx-tls-error.log" -c "$LAB_DIR/nginx-tls.conf" -g 'daemon off;'
	lab_wait_port wan $LAB_WEB 443 && lab_wait_port wan $LAB_WEB 8443 && lab_wait_port wan $LAB_WEB 9443
}

# The sources unbound saw queries from ("info: ADDRESS NAME TYPE IN"), sorted, unique.
lab_dot_sources() {
	sed -n 's/.* info: \([0-9a-f.:]*\) [^ ]* [A-Z0-9]* IN$/\1/p' "$LAB_DIR/unbound-file.log" 2>/dev/null | sort -u
}

# dante-server on $LAB_DANTE:1080, no auth: CONNECT and UDP ASSOCIATE. LAB_DANTE_RULES: more
# "socks block {...}" rules, before the one that passes everything.
lab_start_dante() {
	cat >"$LAB_DIR/danted.conf" <<-CONF
	logoutput: $LAB_DIR/danted-file.log
	internal: $LAB_DANTE port = 1080
	external: $LAB_DANTE
	external: $LAB_DANTE6
	socksmethod: none
	clientmethod: none
	udp.connectdst: no
	user.privileged: root
	user.unprivileged: nobody
	${LAB_DANTE_OPTS:-}
	client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
	${LAB_DANTE_RULES:-}
	socks pass { from: 0/0 to: 0/0 command: connect udpassociate udpreply }
	CONF
	lab_bg wan danted danted -f "$LAB_DIR/danted.conf" -p "$LAB_DIR/danted.pid" -N 2
	lab_wait_port wan $LAB_DANTE 1080
}

# shadowsocks-libev: ss-server on $LAB_SS_SERVER:8388 (its outgoing traffic from that address too),
# and ss-local on $LAB_SS:1080, a SOCKS5 server that carries TCP and, with -u, UDP (UDP ASSOCIATE).
lab_start_ss() {
	local k=lab-ss-password m=chacha20-ietf-poly1305
	lab_bg wan ss-server ss-server -s $LAB_SS_SERVER -p 8388 -b $LAB_SS_SERVER -k $k -m $m -u -v
	lab_wait_port wan $LAB_SS_SERVER 8388 || return 1
	lab_bg wan ss-local ss-local -s $LAB_SS_SERVER -p 8388 -b $LAB_SS -l 1080 -k $k -m $m -u -v
	lab_wait_port wan $LAB_SS 1080
}

# A UDP echo server on $LAB_ECHO:PORT; every datagram's source in $LAB_DIR/udp-echo-PORT.log as
# "ADDRESS PORT LENGTH".
lab_start_udp_echo() { # port
	: >"$LAB_DIR/udp-echo-$1.log"
	lab_bg wan "udp-echo-$1" python3 "$ROOT/tests/e2e/udp_tool.py" echo $LAB_ECHO "$1" "$LAB_DIR/udp-echo-$1.log"
	for _ in $(seq 1 50); do
		lab_exec wan ss -Hlun "src $LAB_ECHO:$1" | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# Stop dante entirely: its main process and the children that serve open sessions (all inside
# this lab's wan namespace), as a crash or a kill -9 of the whole service would.
lab_stop_dante() {
	local pid
	lab_stop_pid "$(awk '$2 == "danted" {print $1}' "$LAB_DIR/pids" | tail -1)"
	for pid in $(ip netns pids "$(lab_ns wan)" 2>/dev/null); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = danted ] && kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# Stop a process this lab started, by PID: TERM, then KILL after 3 s.
# SIGTERM, then SIGKILL after 10 s: a daemon's own clean stop may take seconds (pgw-api lets an
# HA long-poll finish, pgw-forwarder waits up to 5 s for pgw-api to take its last counts) and a
# sanitized one then runs its leak check, which a SIGKILL in the middle turns into a report
# ("Unable to get registers from thread").
lab_stop_pid() {
	local pid=$1 i comm
	comm=$(cat "/proc/$pid/comm" 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
		sleep 0.05
	done
	echo "# lab: $comm ($pid) did not stop within 10 s of SIGTERM: killed" >&2
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

lab_down() {
	local pid name n ns
	trap - EXIT INT TERM
	[ -n "${LAB_DIR:-}" ] || return 0
	if [ -f "$LAB_DIR/pids" ]; then
		while read -r pid name; do lab_stop_pid "$pid"; done <"$LAB_DIR/pids"
	fi
	for n in lan gw gw2 wan spoof; do
		ns=$(lab_ns $n)
		ip netns list 2>/dev/null | grep -qw "$ns" || continue
		# anything still running inside our own namespaces (e.g. forked workers)
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	for n in lan gw wan; do # a namespace's own resolv.conf (lab_resolv_conf)
		ns=$(lab_ns $n)
		case $ns in pgwt-*) [ -d "/etc/netns/$ns" ] && rm -rf "/etc/netns/$ns" ;; esac
	done
	if [ -n "${LAB_KEEP_LOGS:-}" ]; then
		mkdir -p "$LAB_KEEP_LOGS" && cp "$LAB_DIR"/*.log "$LAB_KEEP_LOGS"/ 2>/dev/null
	fi
	rm -rf "$LAB_DIR"
	LAB_DIR=
}

# A second host on the LAN wire (issue 19): namespace "spoof" with a macvlan of the lan
# namespace's lan0 (another MAC, the same segment), holding the addresses given (IPv4 /24, IPv6
# /64), default routes via the gateway. Its MAC: lab_spoofer_mac. lab_down removes it.
lab_spoofer_up() { # addr...
	local ns a
	ns=$(lab_ns spoof)
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	ip -n "$(lab_ns lan)" link add link lan0 name spoof0 type macvlan mode bridge || return 1
	ip -n "$(lab_ns lan)" link set spoof0 netns "$ns" || return 1
	for a in "$@"; do
		case $a in
		*:*) ip -n "$ns" addr add "$a/64" dev spoof0 nodad ;;
		*) ip -n "$ns" addr add "$a/24" dev spoof0 ;;
		esac
	done
	ip -n "$ns" link set spoof0 up
	ip -n "$ns" route add default via 192.168.2.1
	ip -n "$ns" -6 route add default via fd00:2::1 2>/dev/null
	return 0
}
lab_spoofer_mac() { ip -n "$(lab_ns spoof)" -br link show spoof0 | awk '{print $3}'; }
lab_client_mac() { ip -n "$(lab_ns lan)" -br link show lan0 | awk '{print $3}'; }

# Give a namespace its own /etc/resolv.conf naming SERVER (ip netns exec bind-mounts
# /etc/netns/NS/resolv.conf over it); lab_down removes it.
lab_resolv_conf() { # ns server
	local d=/etc/netns/$(lab_ns "$1")
	mkdir -p "$d" && echo "nameserver $2" >"$d/resolv.conf"
}

# Sleep in a way that lets the EXIT/TERM/INT traps run at once.
lab_wait_forever() {
	sleep 86400 &
	echo "$! sleep" >>"$LAB_DIR/pids"
	wait $!
}

# ---- helpers for scenarios that run pgw in the gw namespace ----

# The usual start of a scenario: the lab, its peers, a fresh pgw DB. Exits on failure.
lab_scenario() {
	lab_up || { echo "# lab_up failed"; exit 1; }
	lab_start_peers || { echo "# peers failed to start"; exit 1; }
	lab_pgw_env
}

# A fresh DB in the lab dir, the daemons' environment exported.
lab_pgw_env() {
	export PGW_DB=$LAB_DIR/pgw.db PGW_RUN_DIR=$LAB_DIR/run PGW_LOG_FORMAT=json PGW_LOG_LEVEL=${PGW_LOG_LEVEL:-info}
	export PGW_HEALTH_URL=http://$LAB_WEB/ip
	# two relay threads, whatever the machine's CPUs (e2e 36 counts descriptors per thread)
	export PGW_FORWARDER_WORKERS=${PGW_FORWARDER_WORKERS:-2}
	"$PGW_BIN/pgwctl" migrate >/dev/null
}

# Capture on the gateway's WAN interface every packet whose source is a LAN client.
lab_capture_start() { # name
	LAB_CAP=$LAB_DIR/$1.pcap
	lab_bg gw "tcpdump-$1" tcpdump -i eth0 -n -U --immediate-mode -w "$LAB_CAP" 'src net 192.168.2.0/24 or src net fd00:2::/64'
	LAB_CAP_PID=$LAB_LAST_PID
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on' "$LAB_DIR/tcpdump-$1.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "lab: tcpdump did not start" >&2
	return 1
}

# Stop the capture; print how many client packets crossed the WAN interface (text: $LAB_CAP.txt). (--immediate-mode:
# every packet is handed to tcpdump at once, so none is still in a ring block when it stops.) A
# capture that cannot be read prints why, never "0": a check for no leak must not pass on it.
lab_capture_stop() {
	sleep 0.2
	lab_stop_pid "$LAB_CAP_PID"
	lab_pcap_count "$LAB_CAP"
}

# The packets in a capture file (its text in FILE.txt), or why it cannot be read (and 1).
lab_pcap_count() { # file [tcpdump -r options...]
	local f=$1
	shift
	if ! tcpdump -r "$f" -n "$@" >"$f.txt" 2>"$f.err"; then
		echo "no capture: $(tr '\n' ' ' <"$f.err" | head -c 200)"
		return 1
	fi
	wc -l <"$f.txt"
}

# Every kind of traffic a client might send out: TCP, UDP/53, UDP/443, TCP/53, ICMP, and the
# same over IPv6. Each try is bounded; failures are expected and ignored.
lab_client_tries() { # client-ip client-ip6
	local ip=$1 ip6=${2:-}
	lab_exec lan curl -s -m 1 --interface "$ip" "http://$LAB_WEB/ip" >/dev/null 2>&1
	lab_exec lan socat -u - "UDP4:$LAB_WEB:53,bind=$ip" <<<"dns query" >/dev/null 2>&1
	lab_exec lan socat -u - "UDP4:$LAB_WEB:443,bind=$ip" <<<"quic" >/dev/null 2>&1
	lab_exec lan socat -u - "TCP4:$LAB_WEB:53,bind=$ip,connect-timeout=1" <<<"dns over tcp" >/dev/null 2>&1
	lab_exec lan ping -n -q -c 1 -W 1 -I "$ip" "$LAB_WEB" >/dev/null 2>&1
	if [ -n "$ip6" ]; then
		lab_exec lan curl -s -m 1 --interface "$ip6" "http://[$LAB_WEB6]/ip" >/dev/null 2>&1
		lab_exec lan socat -u - "UDP6:[$LAB_WEB6]:53,bind=[$ip6]" <<<"dns6" >/dev/null 2>&1
		lab_exec lan socat -u - "UDP6:[$LAB_WEB6]:443,bind=[$ip6]" <<<"quic6" >/dev/null 2>&1
		lab_exec lan ping -6 -n -q -c 1 -W 1 -I "$ip6" "$LAB_WEB6" >/dev/null 2>&1
	fi
	return 0
}

# The control of a leak capture, before pgw has any table in the gw namespace: an unmapped
# client's tries (IPv4 and IPv6) cross the WAN interface, and the capture sees them. Prints
# how many; a scenario checks it is more than 0, so its own "0 leaked" can be believed.
lab_capture_control() {
	lab_exec gw nft list table inet pgw >/dev/null 2>&1 && { echo "lab: control with a pgw table in place" >&2; echo 0; return; }
	lab_capture_start control >/dev/null || { echo 0; return; }
	lab_client_tries 192.168.2.13 fd00:2::13
	lab_capture_stop
}

# lab_client_tries over and over in the background until lab_traffic_stop (or lab_down).
lab_traffic_start() { # client-ip [client-ip6]
	(
		trap - EXIT INT TERM
		while [ ! -e "$LAB_DIR/traffic.stop" ]; do lab_client_tries "$@"; done
	) &
	echo "$! traffic-$1" >>"$LAB_DIR/pids"
}
lab_traffic_stop() { # waits for every loop to finish its round
	local pid name
	touch "$LAB_DIR/traffic.stop"
	while read -r pid name; do
		case $name in traffic-*) wait "$pid" 2>/dev/null ;; esac
	done <"$LAB_DIR/pids"
	rm -f "$LAB_DIR/traffic.stop"
}

# Every sqlite3 the lab runs waits up to 5 s for a lock, as the daemons do (they write too):
# without it a test reading or writing the state DB while a daemon commits fails at random with
# "database is locked". The function covers bash, also inside `bash -c`; LAB_SQLITE is the same
# command as text, for a command line another shell runs (a generated script, node's execSync).
export LAB_SQLITE_WAIT='.timeout 5000'
LAB_SQLITE="sqlite3 -cmd '$LAB_SQLITE_WAIT'"
sqlite3() { command sqlite3 -cmd "$LAB_SQLITE_WAIT" "$@"; }
export -f sqlite3
# The state DB from a test.
lab_db() { sqlite3 "$PGW_DB" "$@"; }

# The forwarder's table reloads so far (each logs "mappings loaded (why)"): `n=$(lab_fwd_reloads)`
# before a change, then `check "..." lab_fwd_reloaded $n` waits (up to 5 s) for the reload after
# it, in place of a sleep that guesses how long the forwarder takes. LOG: the forwarder's log
# name (pgw-forwarder); WHY: only reloads for that reason ("event": a notify, "poll").
# lab_fds PID: the descriptors a process holds in all its tables (each pgw-forwarder worker thread
# has one of its own), each table counted once: threads that share one are told apart by kcmp(2)
# (KCMP_FILES), not by what their listings show, which may change between two reads.
# lab_fds PID tables: each table's count instead, the process's own first.
lab_fds() {
	python3 - "$1" "${2:-}" <<-'PY'
	import ctypes, os, platform, sys
	pid, libc = sys.argv[1], ctypes.CDLL(None, use_errno=True)
	SYS_kcmp, KCMP_FILES = {"x86_64": 312, "aarch64": 272}[platform.machine()], 2
	def same(a, b):
	    r = libc.syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0)
	    if r < 0 and ctypes.get_errno() != 3:  # ESRCH: the thread has gone
	        sys.exit("lab_fds: kcmp: " + os.strerror(ctypes.get_errno()))
	    return r == 0
	tables, counts = [], []
	tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
	for t in [int(pid)] + [t for t in tids if t != int(pid)]:  # the process's own table first
	    if any(same(t, u) for u in tables):
	        continue
	    try:
	        counts.append(len(os.listdir(f"/proc/{pid}/task/{t}/fd")))
	        tables.append(t)
	    except FileNotFoundError:
	        pass
	print(" ".join(map(str, counts)) if sys.argv[2] == "tables" else sum(counts))
	PY
}
# lab_ss_held PID NS SS-ARGS...: the `ss -Htne` lines of the sockets PID holds, in any of its
# threads' tables (`ss -p` sees only the process's own table, not pgw-forwarder's workers')
lab_ss_held() {
	local pid=$1 ns=$2
	shift 2
	ip netns exec "$(lab_ns "$ns")" ss -Htne "$@" | grep -wFf <(find /proc/"$pid"/task/*/fd -lname 'socket:*' -printf '%l\n' 2>/dev/null |
		sed 's/socket:\[\(.*\)\]/ino:\1/' | sort -u)
}
lab_fwd_reloads() { grep -c "mappings loaded (${2:-}" "$LAB_DIR/${1:-pgw-forwarder}.log"; }
lab_fwd_reloaded() { # n [log [why]]: more than n reloads
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(lab_fwd_reloads "${2:-}" "${3:-}")" -gt "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# pgw-api's environment for a scenario: a JWT secret, and 127.0.0.1:8080 in the gw namespace.
lab_api_env() {
	export PGW_JWT_SECRET=lab-jwt-secret-0123456789abcdef0123456789 PGW_API_LISTEN=127.0.0.1:8080
}

# pgw-api (PGW_API_LISTEN=127.0.0.1:8080 in the gw namespace): prints "<status> <body>".
lab_api() { # method path [curl args...]
	local m=$1 p=$2
	shift 2
	: >"$LAB_DIR/api-body" # a call that fails prints 000 and no earlier call's body
	lab_exec gw curl -s -m 20 -o "$LAB_DIR/api-body" -w '%{http_code}' -X "$m" "$@" "http://127.0.0.1:8080$p"
	printf ' '
	cat "$LAB_DIR/api-body"
}

# Log in through the API and print the "Authorization: Bearer ..." header to use.
lab_api_login() { # user password
	printf 'Authorization: Bearer %s' "$(lab_api POST /api/v1/auth/login -H 'Content-Type: application/json' \
		-d "{\"username\":\"$1\",\"password\":\"$2\"}" | cut -d' ' -f2- | jq -r .token)"
}

# Milliseconds since the epoch (timing functional bounds such as "blocked within 1 s").
lab_ms() { echo $(($(date +%s%N) / 1000000)); }
