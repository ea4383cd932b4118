#!/usr/bin/env python3
"""The sandbox's HTTP peer on 127.0.0.1: it plays the alert webhook, the
health checks, Grafana's alert API, the exchange's REST API and the
collector, so runbooks run end to end against real HTTP.

    server.py SANDBOX_DIR          port written to SANDBOX_DIR/port

State is SANDBOX_DIR/state.json (tests edit it between steps; it is read on
every request); every request is appended to SANDBOX_DIR/requests.jsonl.

Routes (JSON in and out):
  POST /alert                        record the message; 200 (state.alert_status to fail it)
  GET  /health/NAME                  state.health[NAME] ("healthy" by default): 200, else 503
  GET  /grafana/api/alerts           state.grafana_alerts (a list)
  GET  /exchange/ping                {"serverTime": ms}; 503 when state.exchange.down
  GET  /exchange/positions           state.exchange.positions (a list of {symbol, qty})
  GET  /exchange/rate_limit          {"used": n, "limit": m}
  GET  /exchange/keys                state.exchange.keys (a list of {id, permissions})
  POST /exchange/keys                {"permissions": [...]} -> a new key {id, secret, permissions}
  POST /exchange/keys/ID/revoke      remove key ID; 404 when unknown
  POST /exchange/orders/cancel_all   cancel every open order (state.exchange.open_orders = 0)
  GET  /kv/KEY   PUT/POST /kv/KEY    a small key-value store (flags: safe_mode, risk_halt, ...)
"""
import json, os, sys, threading, time, secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
STATE = os.path.join(DIR, "state.json")
LOCK = threading.Lock()


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, STATE)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with LOCK:
            with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps({"at": time.time(), "method": method, "path": self.path, "body": body,
                                    "auth": self.headers.get("Authorization")}) + "\n")
            state = load()
            code, out = self.route(method, self.path.split("?")[0].strip("/").split("/"), body, state)
            save(state)
        self.reply(code, out)

    def route(self, method, p, body, st):
        ex = st.setdefault("exchange", {})
        if p == ["alert"] and method == "POST":
            st.setdefault("alerts", []).append(body)
            return st.get("alert_status", 200), {"ok": True}
        if len(p) == 2 and p[0] == "health":
            s = st.get("health", {}).get(p[1], "healthy")
            return (200 if s == "healthy" else 503), {"status": s}
        if p == ["grafana", "api", "alerts"]:
            return 200, st.get("grafana_alerts", [])
        if p and p[0] == "exchange":
            if ex.get("down"):
                return 503, {"error": "exchange unavailable"}
            if p == ["exchange", "ping"]:
                return 200, {"serverTime": int(time.time() * 1000)}
            if p == ["exchange", "positions"]:
                return 200, ex.get("positions", [])
            if p == ["exchange", "rate_limit"]:
                return 200, {"used": ex.get("rate_used", 0), "limit": ex.get("rate_limit", 1200)}
            if p == ["exchange", "keys"] and method == "GET":
                return 200, ex.get("keys", [])
            if p == ["exchange", "keys"] and method == "POST":
                key = {"id": "k" + secrets.token_hex(4), "secret": secrets.token_hex(16),
                       "permissions": (body or {}).get("permissions", [])}
                ex.setdefault("keys", []).append({"id": key["id"], "permissions": key["permissions"]})
                return 200, key
            if len(p) == 4 and p[1] == "keys" and p[3] == "revoke":
                keys = ex.get("keys", [])
                if not any(k["id"] == p[2] for k in keys):
                    return 404, {"error": "no such key"}
                ex["keys"] = [k for k in keys if k["id"] != p[2]]
                ex.setdefault("revoked", []).append(p[2])
                return 200, {"revoked": p[2]}
            if p == ["exchange", "orders", "cancel_all"]:
                n = ex.get("open_orders", 0)
                ex["open_orders"] = 0
                return 200, {"cancelled": n}
        if len(p) == 2 and p[0] == "kv":
            kv = st.setdefault("kv", {})
            if method in ("PUT", "POST"):
                kv[p[1]] = body
                return 200, {"ok": True}
            return (200, {"value": kv[p[1]]}) if p[1] in kv else (404, {"error": "no such key"})
        return 404, {"error": "no route " + "/".join(p)}

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
srv.serve_forever()
