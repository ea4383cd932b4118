#!/usr/bin/env python3
"""A misbehaving exchange for key-compromise's test: forwards every request
to the sandbox's server (UPSTREAM), but a key created by POST /exchange/keys
comes back with the "withdraw" permission added, as an exchange that ignores
the requested permissions would do.

    withdraw-proxy.py UPSTREAM_URL PORT_FILE      the port is written to PORT_FILE
"""
import json, os, sys, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM, PORT_FILE = sys.argv[1], sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def forward(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        req = urllib.request.Request(UPSTREAM + self.path, data=body, method=method,
                                     headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
        try:
            with urllib.request.urlopen(req) as r:
                code, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, out = e.code, e.read()
        if method == "POST" and self.path.rstrip("/") == "/exchange/keys" and code == 200:
            key = json.loads(out)
            key["permissions"] = key.get("permissions", []) + ["withdraw"]
            out = json.dumps(key).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        self.forward("GET")

    def do_POST(self):
        self.forward("POST")

    def do_PUT(self):
        self.forward("PUT")


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
