#!/usr/bin/env python3
"""Stand-in for quant_pipeline's Prometheus endpoint in the sandbox
(runbooks/alert-diagnostics.yaml), on 127.0.0.1 (a free port, written to
DIR/metrics.port):

    metrics_server.py DIR

GET /metrics answers DIR/metrics.prom as it is at that moment (tests edit it
between steps); a missing file gives 503. Each request is appended to
DIR/metrics.log."""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        with open(os.path.join(DIR, "metrics.log"), "a") as f:
            f.write(self.path + "\n")
        try:
            with open(os.path.join(DIR, "metrics.prom"), "rb") as f:
                body, code = f.read(), 200
        except FileNotFoundError:
            body, code = b"metrics unavailable\n", 503
        if self.path.split("?")[0] != "/metrics":
            body, code = b"not found\n", 404
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "metrics.port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(os.path.join(DIR, "metrics.port.tmp"), os.path.join(DIR, "metrics.port"))
srv.serve_forever()
