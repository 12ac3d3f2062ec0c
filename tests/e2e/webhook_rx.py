#!/usr/bin/env python3
"""A webhook receiver for the lab: python3 webhook_rx.py ADDR PORT LOG SECRET

Each POST becomes one JSON line in LOG: the time it arrived (ms), the path, the X-Pgw-* headers,
the body (parsed) and whether X-Pgw-Signature is the HMAC-SHA256 of the exact body bytes under
SECRET (computed here with Python's hmac, independently of pgw's OpenSSL code). A path
/failN answers 503 to its first N requests, then 200; any other path 200."""
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import socketserver

addr, port, log, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
lock = threading.Lock()
seen = {}


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        t = int(time.time() * 1000)
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        sig = self.headers.get("X-Pgw-Signature")
        want = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with lock:
            seen[self.path] = seen.get(self.path, 0) + 1
            count = seen[self.path]
            status = 200
            if self.path.startswith("/fail") and count <= int(self.path[5:] or "0"):
                status = 503
            with open(log, "a") as f:
                f.write(json.dumps({"t": t, "path": self.path, "status": status, "event": self.headers.get("X-Pgw-Event"),
                                    "delivery": self.headers.get("X-Pgw-Delivery"), "signature": sig,
                                    "sig_ok": sig is not None and hmac.compare_digest(sig, want),
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class Server(ThreadingHTTPServer):
    def server_bind(self):  # without HTTPServer's reverse lookup of addr (no resolver in the lab: it hangs)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = addr, port


Server((addr, port), H).serve_forever()
