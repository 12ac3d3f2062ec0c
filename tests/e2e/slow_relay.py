#!/usr/bin/env python3
"""A TCP relay for the lab that waits DELAY seconds after it accepts a connection, then connects
on to TARGET:TPORT and carries the bytes both ways: a proxy that is slow to answer (its health
check takes DELAY longer). Stops by itself after LIFETIME seconds (default 120).

  slow_relay.py ADDR PORT TARGET TPORT DELAY [LIFETIME]
"""
import socket
import sys
import threading
import time


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(c, target, delay):
    time.sleep(delay)
    try:
        u = socket.create_connection(target, timeout=5)
    except OSError:
        c.close()
        return
    u.settimeout(None)
    back = threading.Thread(target=pipe, args=(u, c), daemon=True)
    back.start()
    pipe(c, u)
    back.join()
    c.close()
    u.close()


def main():
    addr, port, taddr, tport, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    end = time.monotonic() + (float(sys.argv[6]) if len(sys.argv) > 6 else 120)
    ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    ls.settimeout(0.5)
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c, (taddr, tport), delay), daemon=True).start()


main()
