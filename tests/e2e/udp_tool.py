#!/usr/bin/env python3
"""UDP peers and clients for the lab (issue 17), each bounded in count and time.

  echo ADDR PORT LOG [RPORT]     echo server; one line "SRC_IP SRC_PORT LEN" per datagram in LOG;
                                 with RPORT the answers leave from that port instead
  spray ADDR PORT FIRST N        answers each datagram from N other ports, FIRST.. FIRST+N-1 (a
                                 host sending to a client's relay address from many ports)
  flows DST PORT SRCS PER COUNT [FIRST_PORT]  PER sockets per source address (comma-separated
                                 SRCS), each sends COUNT datagrams one at a time and waits for each
                                 echo; prints JSON {"flows", "ok_flows", "sent", "received",
                                 "wrong_source", "crossed"}; with FIRST_PORT the sockets bind
                                 FIRST_PORT, FIRST_PORT+1, ... (else ephemeral ports)
  ping SRC DST PORT COUNT        round trips one at a time; prints JSON with min/p50/p99/avg in us
  socksping PROXY PPORT DST PORT COUNT   the same through a SOCKS5 UDP relay used directly
  send SRC DST PORT COUNT        COUNT datagrams, no waiting (to see what reaches where)
  badsocks ADDR PORT             a SOCKS5 server (no auth; CONNECT to IPv4, UDP ASSOCIATE) whose relay sends
                                 each datagram on and returns the answer in bad shapes first
                                 (short, fragment, unknown address type, reserved bytes set, from
                                 the wrong source), then as it should; a datagram
                                 "close-association" ends the control connection
"""
import json
import os
import select
import socket
import struct
import sys
import threading
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def echo(addr, port, log, reply_port=None):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, int(port)))
    out = s
    if reply_port:  # answer from another port: a source the client never sent to (full cone)
        out = socket.socket(family(addr), socket.SOCK_DGRAM)
        out.bind((addr, int(reply_port)))
    with open(log, "a", buffering=1) as f:
        while True:
            data, src = s.recvfrom(65535)
            f.write(f"{src[0]} {src[1]} {len(data)}\n")
            out.sendto(data, src)


def spray(addr, port, first, n):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    outs = []
    for i in range(int(n)):
        o = socket.socket(family(addr), socket.SOCK_DGRAM)
        o.bind((addr, int(first) + i))
        outs.append(o)
    while True:
        data, src = s.recvfrom(65535)
        for o in outs:
            o.sendto(data, src)
            time.sleep(0.002)


def flows(dst, port, srcs, per, count, first_port=0):
    """each socket's datagrams carry its own port and a sequence number; a reply counts only when
    it is the echo of what that very socket sent last (a reply crossed over from another socket
    of the same device is counted as crossed). FIRST_PORT: the sockets of a source bind
    FIRST_PORT, FIRST_PORT+1, ... instead of ephemeral ports (a test that needs new sockets to be
    new to the gateway too: an ephemeral port may be one a closed socket had)"""
    port, per, count, first_port = int(port), int(per), int(count), int(first_port)
    socks = []
    for src in srcs.split(","):
        for i in range(per):
            s = socket.socket(family(dst), socket.SOCK_DGRAM)
            s.bind((src, first_port + i if first_port else 0))
            s.setblocking(False)
            socks.append(s)
    state = {s: {"sent": 0, "got": 0, "wrong": 0, "crossed": 0, "wait": None, "last": b""} for s in socks}
    deadline = time.time() + 60

    def send_next(s, now):
        st = state[s]
        st["last"] = f"{src_of(s)}:{st['sent']}".encode()
        s.sendto(st["last"], (dst, port))
        st["sent"] += 1
        st["wait"] = now

    def src_of(s):
        a = s.getsockname()
        return f"{a[0]}/{a[1]}"

    # every socket has one datagram in flight at a time: concurrent flows, each a stream
    for s in socks:
        send_next(s, time.time())
    while time.time() < deadline:
        live = [s for s in socks if state[s]["wait"] is not None]
        if not live:
            break
        r, _, _ = select.select(live, [], [], 0.2)
        now = time.time()
        for s in r:
            try:
                data, src = s.recvfrom(65535)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            st = state[s]
            if src[0] != dst or src[1] != port:
                st["wrong"] += 1
                continue
            if data != st["last"]:
                st["crossed"] += 1
                continue
            st["got"] += 1
            if st["sent"] < count:
                send_next(s, now)
            else:
                st["wait"] = None
        for s in live:  # a lost datagram: send the next one after 1 s
            st = state[s]
            if st["wait"] is not None and now - st["wait"] > 1.0:
                if st["sent"] < count:
                    send_next(s, now)
                else:
                    st["wait"] = None
    out = {"flows": len(socks), "ok_flows": sum(1 for s in socks if state[s]["got"] == count),
           "sent": sum(v["sent"] for v in state.values()), "received": sum(v["got"] for v in state.values()),
           "wrong_source": sum(v["wrong"] for v in state.values()),
           "crossed": sum(v["crossed"] for v in state.values())}
    print(json.dumps(out))


def report(rtts, lost, count):
    rtts.sort()
    pick = lambda q: round(rtts[min(len(rtts) - 1, int(q * len(rtts)))], 1) if rtts else None
    print(json.dumps({"count": int(count), "lost": lost, "min_us": pick(0), "p50_us": pick(0.5),
                      "p99_us": pick(0.99), "avg_us": round(sum(rtts) / len(rtts), 1) if rtts else None}))


def ping(src, dst, port, count):
    s = socket.socket(family(dst), socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(1.0)
    rtts, lost = [], 0
    for i in range(int(count)):
        t0 = time.perf_counter_ns()
        s.sendto(b"p%d" % i, (dst, int(port)))
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if data == b"p%d" % i:
                    break
            rtts.append((time.perf_counter_ns() - t0) / 1000)
        except socket.timeout:
            lost += 1
    report(rtts, lost, count)


def socksping(proxy, pport, dst, port, count):
    """ping through a SOCKS5 proxy's UDP relay used directly (UDP ASSOCIATE, no auth, IPv4)"""
    c = socket.create_connection((proxy, int(pport)), 5)
    c.sendall(b"\x05\x01\x00")
    c.recv(2)
    c.sendall(b"\x05\x03\x00\x01\0\0\0\0\0\0")
    r = c.recv(300)
    relay = (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0])
    if relay[0] == "0.0.0.0":
        relay = (proxy, relay[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    hdr = socks_header(dst, int(port))
    rtts, lost = [], 0
    for i in range(int(count)):
        t0 = time.perf_counter_ns()
        s.sendto(hdr + b"p%d" % i, relay)
        try:
            while True:
                data, _ = s.recvfrom(2048)
                if data.endswith(b"p%d" % i):
                    break
            rtts.append((time.perf_counter_ns() - t0) / 1000)
        except socket.timeout:
            lost += 1
    report(rtts, lost, count)


def send(src, dst, port, count):
    s = socket.socket(family(dst), socket.SOCK_DGRAM)
    s.bind((src, 0))
    for i in range(int(count)):
        try:
            s.sendto(b"x%d" % i, (dst, int(port)))
        except OSError:
            pass
        time.sleep(0.01)


def socks_header(addr, port):
    if ":" in addr:
        return b"\0\0\0\x04" + socket.inet_pton(socket.AF_INET6, addr) + struct.pack("!H", port)
    return b"\0\0\0\x01" + socket.inet_aton(addr) + struct.pack("!H", port)


def badsocks_conn(c, addr):
    try:
        c.settimeout(10)
        g = c.recv(2 + 255)
        if len(g) < 3 or g[0] != 5:
            return
        c.sendall(b"\x05\x00")
        req = c.recv(300)
        if len(req) >= 10 and req[1] == 1 and req[3] == 1:  # CONNECT to an IPv4 address: a plain TCP relay
            up = socket.create_connection((socket.inet_ntoa(req[4:8]), struct.unpack("!H", req[8:10])[0]), 5)
            c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(addr) + b"\0\0")
            c.settimeout(None)
            up.settimeout(None)

            def pipe(a, b):
                try:
                    while True:
                        d = a.recv(65536)
                        if not d:
                            break
                        b.sendall(d)
                except OSError:
                    pass
                for x in (a, b):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            t = threading.Thread(target=pipe, args=(up, c), daemon=True)
            t.start()
            pipe(c, up)
            t.join(10)
            up.close()
            return
        if len(req) < 4 or req[1] != 3:
            c.sendall(b"\x05\x07\x00\x01\0\0\0\0\0\0")
            return
        relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        relay.bind((addr, 0))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind((addr, 0))
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.bind((addr, 0))
        out.settimeout(1.0)
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(addr) + struct.pack("!H", relay.getsockname()[1]))
        relay.settimeout(0.5)
        c.setblocking(False)
        while True:
            try:
                if c.recv(1) == b"":
                    return
            except BlockingIOError:
                pass
            try:
                data, src = relay.recvfrom(65535)
            except socket.timeout:
                continue
            if len(data) < 10 or data[3] != 1:
                continue
            dst = socket.inet_ntoa(data[4:8])
            dport = struct.unpack("!H", data[8:10])[0]
            if data[10:] == b"close-association":  # the test's cue: the control connection ends
                return
            out.sendto(data[10:], (dst, dport))  # a real relay: the datagram goes out...
            try:
                payload, _ = out.recvfrom(65535)  # ...and its answer comes back, in bad shapes first
            except socket.timeout:
                continue
            hdr = socks_header(dst, dport)
            relay.sendto(b"\0\0", src)                              # short
            relay.sendto(b"\0\0\x01" + hdr[3:] + payload, src)      # a fragment
            relay.sendto(b"\0\0\0\x09" + hdr[4:] + payload, src)    # unknown address type
            relay.sendto(b"\x01\0\0" + hdr[3:] + payload, src)      # reserved bytes set
            other.sendto(hdr + payload, src)                        # from the wrong source
            relay.sendto(socks_header("10.77.1.5", dport) + payload, src)  # "from" a network behind the LAN
            relay.sendto(hdr + payload, src)                        # the good one
    except OSError:
        pass
    finally:
        c.close()


def badsocks(addr, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(port)))
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=badsocks_conn, args=(c, addr), daemon=True).start()


if __name__ == "__main__":
    cmds = {"echo": echo, "spray": spray, "flows": flows, "ping": ping, "socksping": socksping, "send": send, "badsocks": badsocks}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
