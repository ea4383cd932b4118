#!/usr/bin/env python3
"""A small HTTP server for tests/scripts/plugin-http.sh, on 127.0.0.1.

    http_server.py LOG PORTFILE [--tls CERT KEY]

Binds a free port, writes it to PORTFILE, and appends one JSON line per
request to LOG: {"method", "path", "headers" (lower-case names), "body"}.
Routes (the query string is ignored for routing):

  /ok              200, {"status": "ok", "count": 3}
  /echo            200, the request as JSON (method, path, query, headers, body)
  /status/N        status N, body "status N: this body explains why"
  /basic           200 when Authorization is Basic of $HTTP_USER:$HTTP_PASS, else 401;
                   the body repeats the Authorization header
  /bearer          200 when Authorization is Bearer $HTTP_TOKEN, else 401; same body
  /flaky429...     429 with Retry-After: 1 on the first request to that path, then 200
  /flakydate...    503 with Retry-After as an HTTP date 2 s ahead, first time, then 200
  /busy            503 with Retry-After: 0, always
  /slow            sleeps 3 s, then 200
  /redirect        302 to /ok, with the same query
  /big             200, 5000 bytes of "x"
"""
import email.utils, json, os, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOG, PORTFILE = sys.argv[1], sys.argv[2]
seen = {}
lock = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        u = urlsplit(self.path)
        rec = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body}
        with lock:
            with open(LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
            seen[u.path] = seen.get(u.path, 0) + 1
            count = seen[u.path]
        p = u.path
        if p == "/ok":
            self.reply(200, json.dumps({"status": "ok", "count": 3}), [("Content-Type", "application/json"),
                                                                        ("X-Multi", "a"), ("X-Multi", "b")])
        elif p == "/echo":
            rec["query"] = u.query
            self.reply(200, json.dumps(rec), [("Content-Type", "application/json")])
        elif p.startswith("/status/"):
            code = int(p.rsplit("/", 1)[1])
            self.reply(code, f"status {code}: this body explains why")
        elif p in ("/basic", "/bearer"):
            import base64
            want = ("Basic " + base64.b64encode(f"{os.environ['HTTP_USER']}:{os.environ['HTTP_PASS']}".encode()).decode()
                    if p == "/basic" else "Bearer " + os.environ["HTTP_TOKEN"])
            got = self.headers.get("Authorization") or ""
            self.reply(200 if got == want else 401, "you sent: " + got)
        elif p.startswith("/flaky429"):
            self.reply(429, "slow down", [("Retry-After", "1")]) if count == 1 else self.reply(200, "fine now")
        elif p.startswith("/flakydate"):
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            self.reply(503, "later", [("Retry-After", when)]) if count == 1 else self.reply(200, "fine now")
        elif p == "/busy":
            self.reply(503, "busy, try later", [("Retry-After", "0")])
        elif p == "/slow":
            time.sleep(3)
            self.reply(200, "finally")
        elif p == "/redirect":
            self.reply(302, "moved", [("Location", "/ok?" + u.query)])
        elif p == "/big":
            self.reply(200, "x" * 5000)
        else:
            self.reply(404, "no route " + p)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
if len(sys.argv) > 3 and sys.argv[3] == "--tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
