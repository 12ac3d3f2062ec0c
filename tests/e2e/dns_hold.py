#!/usr/bin/env python3
"""A DNS-over-TCP server for the lab that holds every query until a file exists, then answers
them all (and every later one at once) with NXDOMAIN, the question echoed. Stops by itself
after LIFETIME seconds (default 120). With "stall", a connection accepted before the gate exists
is never answered, not even after it: a connection held open that no longer answers (a new one
is answered once the gate exists).

  dns_hold.py ADDR PORT GATE [LIFETIME [stall]]
"""
import os
import selectors
import socket
import struct
import sys
import time


def answer(m):
    # QR, the query's opcode and RD kept; RA; NXDOMAIN; the rest (question, OPT) as asked
    return m[:2] + bytes([m[2] | 0x80, 0x80 | 3]) + m[4:]


def main():
    addr, port, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    end = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) > 4 else 120)
    stall = len(sys.argv) > 5 and sys.argv[5] == "stall"
    stalled = set()
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    bufs, held = {}, []
    while time.monotonic() < end:
        for key, _ in sel.select(0.02):
            if key.fileobj is ls:
                c, _ = ls.accept()
                if stall and not os.path.exists(gate):
                    stalled.add(c)
                sel.register(c, selectors.EVENT_READ)
                bufs[c] = b""
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            if not d:
                sel.unregister(c)
                c.close()
                del bufs[c]
                stalled.discard(c)
                held = [(h, m) for h, m in held if h is not c]
                continue
            bufs[c] += d
            while len(bufs[c]) >= 2 and len(bufs[c]) >= 2 + struct.unpack(">H", bufs[c][:2])[0]:
                n = struct.unpack(">H", bufs[c][:2])[0]
                if n >= 12 and c not in stalled:
                    held.append((c, bufs[c][2:2 + n]))
                bufs[c] = bufs[c][2 + n:]
        if held and os.path.exists(gate):
            for c, m in held:
                r = answer(m)
                try:
                    c.sendall(struct.pack(">H", len(r)) + r)
                except OSError:
                    pass
            held = []


main()
