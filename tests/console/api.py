"""rbk serve's API through real HTTP (docs/console.md): every role against
every action, sessions, CSRF, the login rate limit, public reads, the
live timeline, /metrics checked by promtool, TLS. Prints ok/FAIL lines.

argv: RBK (the binary under test). Env: RBK_HOME/RBK_STORE, RBK_PATH (the
run fixtures), RBK_PLUGIN_PATH, TMP."""
import json, os, re, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import Console, check, fail, ok

RBK = sys.argv[1]
env = dict(os.environ)


def events(c):
    """The chain's length: what a refused request must not change."""
    p = c.cli("verify", "--json")
    return json.loads(p.stdout)["events"] if p.stdout.strip() else -1


def wait_status(c, run, want, timeout=30):
    st = None
    for _ in range(int(timeout * 10)):
        p = c.cli("show", str(run), "--json")
        if p.returncode in (0, 1, 3, 4) and p.stdout.strip():
            st = json.loads(p.stdout)["status"]
            if st in want:
                return st
        time.sleep(0.1)
    return st


def launch_cli(c, *params):
    """A waiting run started on the command line (the approval fixture)."""
    args = ["run", "approval", "-p", "ledger=" + os.path.join(env["TMP"], "ledger")]
    for p in params:
        args += ["-p", p]
    p = c.cli(*args)
    m = re.search(r"run (\d+)", p.stdout + p.stderr)
    return int(m.group(1)) if m else None


with Console(RBK, env) as c:
    op = c.user("op", "operator")
    op2 = c.user("op2", "operator")
    viewer = c.user("vi", "viewer")
    auditor = c.user("au", "auditor")
    alice = c.user("rbk-alice", "operator")

    # Only the token's hash is kept.
    listed = c.cli("user", "list", "--json")
    stored = listed.stdout
    check(op.startswith("rbk_") and len(op) == 68 and op not in stored and "token_sha256" not in stored,
          "rbk user add prints a token once; rbk user list shows no token and no hash", stored)
    if env.get("RBK_STORE", "").startswith("postgres"):
        dump = subprocess.run(["psql", "-X", "-At", "-d", env["RBK_STORE"], "-c", "select value from meta"],
                              capture_output=True, text=True).stdout
    else:
        dump = subprocess.run(["sqlite3", os.path.join(env["RBK_HOME"], "rbk.db"), "select value from meta"],
                              capture_output=True, text=True).stdout
    import hashlib
    check(op not in dump and hashlib.sha256(op.encode()).hexdigest() in dump,
          "the store holds the token's SHA-256, never the token", dump[:300])
    dup = c.cli("user", "add", "op", "--role", "viewer")
    check(dup.returncode == 2 and "exists" in dup.stderr, "adding a user twice is refused (exit 2)", dup.stderr)
    bad = c.cli("user", "add", "x", "--role", "root")
    check(bad.returncode == 2 and "viewer, operator or auditor" in bad.stderr, "an unknown role is refused", bad.stderr)

    # The page needs no token and carries a strict policy; the data does.
    st, h, body = c.req("GET", "/")
    csp = h.get("content-security-policy", [""])[0]
    check(st == 200 and b"console.js" in body and "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0],
          "GET / gives the page with a Content-Security-Policy allowing only its own script", (st, csp))
    st, h, body = c.req("GET", "/api/status")
    check(st == 401 and "Bearer" in h.get("www-authenticate", [""])[0], "without a token the API answers 401", (st, body))
    st, h, body = c.req("GET", "/metrics")
    check(st == 401, "without a token /metrics answers 401", st)

    r1 = launch_cli(c)
    check(r1 is not None and wait_status(c, r1, {"waiting"}) == "waiting", "a run waits for approval", r1)

    # ---- every role against every action ----
    reads = ["/api/status", "/api/history", f"/api/runs/{r1}", f"/api/runs/{r1}/log", "/api/runbooks",
             "/api/schedules", "/metrics", "/api/runbooks/approval/graph.svg", f"/api/runs/{r1}/report",
             f"/api/runs/{r1}/source"]
    audits = ["/api/audit/verify", f"/api/runs/{r1}/bundle"]
    acts = [("POST", "/api/runs", {"runbook": "approval", "params": {"ledger": os.path.join(env["TMP"], "l-x")}}),
            ("POST", f"/api/runs/{r1}/approve", {"comment": "x"}),
            ("POST", f"/api/runs/{r1}/reject", {"comment": "x"}),
            ("POST", f"/api/runs/{r1}/abort", {}),
            ("POST", f"/api/runs/{r1}/resume", {"retry_step": True})]
    # (A wrong token counts as a failed login: one request of it only, below,
    # or the address would be locked out for the rest of the test.)
    st, _, _ = c.req("GET", "/api/status", token="rbk_" + "0" * 64)
    check(st == 401, "a wrong token is 401", st)
    roles = {"nobody": None, "viewer": viewer, "auditor": auditor}
    for who, tok in roles.items():
        bad = []
        for path in reads:
            st, _, _ = c.req("GET", path, token=tok)
            want = 401 if who == "nobody" else 200
            if st != want:
                bad.append(f"GET {path}: {st} (want {want})")
        for path in audits:
            st, _, _ = c.req("GET", path, token=tok)
            want = 401 if who == "nobody" else 200 if who == "auditor" else 403
            if st != want:
                bad.append(f"GET {path}: {st} (want {want})")
        before = events(c)
        for method, path, body in acts:
            st, _, _ = c.req(method, path, body, token=tok)
            want = 401 if who == "nobody" else 403
            if st != want:
                bad.append(f"{method} {path}: {st} (want {want})")
        after = events(c)
        check(not bad and before == after and before > 0,
              f"{who}: reads, audit and actions answered as the role allows; refused actions record nothing",
              "; ".join(bad) + f"; events {before} -> {after}")
    # The operator cannot audit; an auditor cannot act (above); the operator acts (below).
    bad = [p for p in audits if c.req("GET", p, token=op)[0] != 403]
    check(not bad, "an operator may not verify or export (403)", bad)

    # ---- operators act, as themselves ----
    before = events(c)
    st, _, body = c.req("POST", f"/api/runs/{r1}/approve", {"comment": "looks fine <b>ok</b>"}, token=op)
    check(st == 200 and body.get("run") == r1, "an operator approves through the API (200)", (st, body))
    fin = wait_status(c, r1, {"succeeded", "failed"})
    log = [json.loads(l) for l in c.cli("log", str(r1), "--json").stdout.splitlines() if l.strip()]
    dec = [e for e in log if e["kind"] == "approval_decided"]
    check(fin == "succeeded" and dec and dec[0]["actor"] == "op@console" and dec[0]["data"]["by"] == "op@console"
          and dec[0]["data"]["comment"] == "looks fine <b>ok</b>",
          "the approval is recorded with the person as the actor (op@console), and the agent finishes the run",
          (fin, dec))

    # launch: typed params checked as the CLI checks them; nothing made when refused
    before = events(c)
    st, _, body = c.req("POST", "/api/runs", {"runbook": "approval", "params": {"ledger": "/tmp/x", "why": "maybe"}},
                        token=op)
    check(st == 400 and "why" in body.get("error", "") and events(c) == before,
          "a launch with a param of the wrong type is refused (400) as the CLI refuses it, creating no run", (st, body))
    for name in ["../etc/x", "/etc/passwd", "x.yaml", "-h", "_notify"]:
        st, _, body = c.req("POST", "/api/runs", {"runbook": name}, token=op)
        if st != 400:
            break
    check(st == 400, "only runbooks on the server's path can be launched, never a file (400)", (name, st, body))
    st, _, body = c.req("POST", "/api/runs", {"runbook": "no-such-runbook"}, token=op)
    check(st == 404, "an unknown runbook is 404", (st, body))
    st, _, body = c.req("POST", "/api/runs", {"runbook": "approval", "params": {"ledger": os.path.join(env["TMP"], "l2"),
                                                                                 "who": "distinct"}}, token=op)
    r2 = body.get("run") if isinstance(body, dict) else None
    check(st == 201 and r2 and body.get("status") == "queued", "an operator launches a run (201, queued)", (st, body))
    check(wait_status(c, r2, {"waiting"}) == "waiting", "the console's agent executes it up to its approval")
    show = json.loads(c.cli("show", str(r2), "--json").stdout)
    check(show["actor"] == "op@console", "the launch is recorded with the person as the actor", show["actor"])
    before = events(c)
    st, _, body = c.req("POST", f"/api/runs/{r2}/approve", {}, token=op)
    check(st == 403 and "someone else" in body.get("error", "") and events(c) == before,
          "distinct: the launcher may not approve their own run (403), nothing recorded", (st, body))
    st, _, body = c.req("POST", f"/api/runs/{r2}/approve", {}, token=op2)
    check(st == 200 and wait_status(c, r2, {"succeeded"}) == "succeeded", "distinct: another operator may (200)",
          (st, body))

    r3 = launch_cli(c, "who=alice")
    wait_status(c, r3, {"waiting"})
    before = events(c)
    st, _, body = c.req("POST", f"/api/runs/{r3}/approve", {}, token=op)
    check(st == 403 and events(c) == before, "approvers: a person not listed is refused (403), nothing recorded",
          (st, body))
    st, _, body = c.req("POST", f"/api/runs/{r3}/reject", {"comment": "no"}, token=alice)
    fin = wait_status(c, r3, {"failed"})
    check(st == 200 and fin == "failed", "approvers: the listed person (rbk-alice) rejects; the run fails", (st, fin))

    r4 = launch_cli(c)
    wait_status(c, r4, {"waiting"})
    st, _, body = c.req("POST", f"/api/runs/{r4}/abort", {}, token=op)
    check(st == 200 and wait_status(c, r4, {"aborted"}) == "aborted", "an operator aborts a run", (st, body))
    st, _, body = c.req("POST", f"/api/runs/{r4}/approve", {}, token=op)
    check(st == 400 and "ended" in body.get("error", ""), "acting on an ended run is 400, saying why", (st, body))
    # resume: a crash leaves a step that is not idempotent in flight
    ledger = os.path.join(env["TMP"], "l-int")
    subprocess.run([RBK, "run", os.path.join(os.path.dirname(env["RBK_PATH"]), "run", "interrupt.yaml"),
                    "-p", "ledger=" + ledger], env={**env, "RBK_CRASH_POINT": "step.after_start:2"},
                   capture_output=True)
    r6 = json.loads(c.cli("history", "--json", "--limit", "1").stdout)["runs"][0]["run"]
    st1, _, b1 = c.req("POST", f"/api/runs/{r6}/resume", {}, token=op)
    attention = wait_status(c, r6, {"needs_attention"})
    st2, _, b2 = c.req("POST", f"/api/runs/{r6}/resume", {"mark_step": "maybe"}, token=op)
    st3, _, b3 = c.req("POST", f"/api/runs/{r6}/resume", {"mark_step": "success"}, token=op)
    fin = wait_status(c, r6, {"succeeded", "failed"})
    log = [json.loads(l) for l in c.cli("log", str(r6), "--json").stdout.splitlines() if l.strip()]
    dec = [e["data"] for e in log if e["kind"] == "operator_decided"]
    labels = open(ledger).read() if os.path.exists(ledger) else ""
    check(st1 == 200 and attention == "needs_attention" and st2 == 400 and st3 == 200 and fin == "succeeded"
          and dec and dec[0].get("by") == "op@console" and "work" not in labels.replace("before", ""),
          "resume: the agent finds the step left in flight needs a decision; --mark-step success from the API is "
          "recorded as the person's, and the run finishes without running the step again",
          (st1, b1, attention, st2, st3, b3, fin, dec, labels))
    st, _, body = c.req("POST", f"/api/runs/{r6}/resume", {}, token=op)
    check(st == 400, "resuming an ended run is 400", (st, body))
    st, _, body = c.req("POST", "/api/runs/999/approve", {}, token=op)
    check(st == 404, "acting on a run that does not exist is 404", (st, body))

    # ---- the browser's way in: session, cookie, CSRF ----
    st, h, body = c.req("POST", "/login", {"token": op})
    sc = h.get("set-cookie", [""])[0]
    check(st == 200 and body.get("user") == "op" and body.get("csrf") and "HttpOnly" in sc and "SameSite=Strict" in sc
          and "Secure" not in sc, "login gives an HttpOnly, SameSite=Strict session cookie and a CSRF token", (st, sc))
    cookie, csrf = sc.split(";")[0], body.get("csrf")
    st, _, _ = c.req("GET", "/api/status", cookie=cookie)
    check(st == 200, "the session cookie reads", st)
    r5 = launch_cli(c)
    wait_status(c, r5, {"waiting"})
    before = events(c)
    st1, _, b1 = c.req("POST", f"/api/runs/{r5}/approve", {}, cookie=cookie)
    st2, _, b2 = c.req("POST", f"/api/runs/{r5}/approve", {}, cookie=cookie, csrf="0" * 64)
    check(st1 == 403 and st2 == 403 and "CSRF" in b1.get("error", "") and events(c) == before,
          "a state-changing request with the cookie but no or a wrong CSRF token is refused (403), nothing recorded",
          (st1, st2, b1))
    st, _, body = c.req("POST", f"/api/runs/{r5}/approve", "{}", cookie=cookie, csrf=csrf, ctype="text/plain")
    after = events(c)
    check(st == 415 and after == before, "a POST that is not JSON is refused (415): no form from another site",
          (st, before, after, c.cli("log", str(r5)).stdout[-800:]))
    st, _, body = c.req("POST", f"/api/runs/{r5}/approve", {"comment": "via cookie"}, cookie=cookie, csrf=csrf)
    check(st == 200 and wait_status(c, r5, {"succeeded"}) == "succeeded", "with its CSRF token the cookie acts", (st, body))
    st, _, _ = c.req("POST", "/logout", {}, cookie=cookie, csrf=csrf)
    st2, _, _ = c.req("GET", "/api/status", cookie=cookie)
    check(st == 200 and st2 == 401, "logout ends the session: the cookie reads nothing more", (st, st2))

    # A removed user's token and sessions stop working.
    ck2, _ = c.login(viewer)
    rm = c.cli("user", "remove", "vi")
    st1, _, _ = c.req("GET", "/api/status", token=viewer)
    st2, _, _ = c.req("GET", "/api/status", cookie=ck2)
    check(rm.returncode == 0 and st1 == 401 and st2 == 401, "rbk user remove: its token and sessions stop working",
          (rm.stderr, st1, st2))
    rot = c.cli("user", "add", "op2", "--rotate")
    new = rot.stdout.strip()
    st1, _, _ = c.req("GET", "/api/status", token=op2)
    st2, _, _ = c.req("GET", "/api/status", token=new)
    check(rot.returncode == 0 and st1 == 401 and st2 == 200, "--rotate: the old token stops, the new one works",
          (st1, st2))

    # ---- the live timeline ----
    conn = c.conn()
    conn.request("GET", f"/api/runs/{r1}/events", headers={"Authorization": "Bearer " + op})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    datas = [json.loads(l[6:]) for l in text.splitlines() if l.startswith("data: {\"seq\"")]
    check(resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream" and datas
          and datas[-1]["kind"] == "run_finished" and "event: end\ndata: {\"exit\": 0}" in text,
          "the event stream of an ended run gives its timeline, then its end with exit 0", text[-300:])

    # ---- metrics ----
    st, h, body = c.req("GET", "/metrics", token=auditor)
    mfile = os.path.join(env["TMP"], "metrics.txt")
    open(mfile, "wb").write(body)
    text = body.decode()
    p = subprocess.run(["promtool", "check", "metrics"], stdin=open(mfile), capture_output=True, text=True)
    check(st == 200 and p.returncode == 0, "/metrics passes promtool check metrics", p.stdout + p.stderr)
    m = re.search(r'rbk_runs\{runbook="approval",status="succeeded"\} (\d+)', text)
    check(m and int(m.group(1)) == 3 and 'rbk_step_duration_seconds_bucket{runbook="approval",le="+Inf"}' in text
          and re.search(r"rbk_chain_events \d+", text) and "rbk_approvals_waiting 0" in text,
          "/metrics counts runs by runbook and status, step durations, approvals waiting, the chain",
          text[:600])
    c.req("GET", "/api/audit/verify", token=auditor)
    text = c.req("GET", "/metrics", token=auditor)[2].decode()
    at = re.search(r"rbk_verify_last_timestamp_seconds (\d+)", text)
    check(at and abs(int(at.group(1)) - time.time()) < 120 and "rbk_verify_last_intact 1" in text,
          "/metrics tells when the chain was last verified, and that it was intact", text[-500:])

    # ---- bad input ----
    st, _, body = c.req("POST", "/api/runs", "{not json", token=op)
    check(st == 400 and "JSON" in body.get("error", ""), "a body that is not JSON is 400", (st, body))
    st, _, body = c.req("GET", "/api/nothing", token=op)
    check(st == 404, "an unknown route is 404", st)
    st, _, body = c.req("DELETE", "/api/status", token=op)
    check(st == 405, "an unknown method is 405", st)
    st, _, body = c.req("POST", "/api/runs", "x" * (70 * 1024), token=op)
    check(st == 413, "a body over 64 KiB is 413", st)
    # The console's agent, killed, is started again.
    agents = subprocess.run(["pgrep", "-f", "-P", str(c.proc.pid), "rbk agent"], capture_output=True, text=True).stdout.split()
    if agents:
        os.kill(int(agents[0]), 9)
    for _ in range(100):
        log = open(c.out.name).read()
        if "starting it again" in log and log.count("agent serving") >= 2:
            break
        time.sleep(0.1)
    check(agents and "starting it again" in log and log.count("agent serving") >= 2,
          "an agent that dies is started again by the console", (agents, log[-400:]))
    code = c.stop()
    check(code == 0 and "stopping" in c.log, "SIGTERM stops the server cleanly (exit 0)", (code, c.log[-400:]))

# ---- the login rate limit, on a fresh server ----
with Console(RBK, env) as c:
    tok = c.user("rl", "viewer")
    sts = [c.req("POST", "/login", {"token": "rbk_" + "1" * 64})[0] for _ in range(5)]
    st, h, body = c.req("POST", "/login", {"token": tok})
    check(sts == [401] * 5 and st == 429 and int(h.get("retry-after", ["0"])[0]) > 0,
          "after 5 failed logins from one address, even the right token waits (429, Retry-After)", (sts, st, h))
    st, _, _ = c.req("GET", "/api/status", token=tok)
    check(st == 429, "bearer tokens from that address wait too", st)

# ---- --public-read ----
with Console(RBK, env, ["--public-read", "--no-agent"]) as c:
    st1, _, _ = c.req("GET", "/api/status")
    st2, _, _ = c.req("GET", "/api/audit/verify")
    st3, _, _ = c.req("POST", "/api/runs", {"runbook": "approval"})
    check(st1 == 200 and st2 == 401 and st3 == 401, "--public-read: reads need no token; audit and actions do",
          (st1, st2, st3))

# ---- TLS ----
key, crt = os.path.join(env["TMP"], "key.pem"), os.path.join(env["TMP"], "crt.pem")
g = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True)
if check(g.returncode == 0, "a test certificate is made", g.stderr):
    with Console(RBK, env, ["--no-agent"], tls=(crt, key)) as c:
        tok = c.cli("user", "add", "tls-user", "--role", "viewer").stdout.strip()
        st, h, body = c.req("POST", "/login", {"token": tok})
        sc = h.get("set-cookie", [""])[0]
        check(st == 200 and "Secure" in sc and "max-age" in h.get("strict-transport-security", [""])[0],
              "under TLS: HTTPS answers, the cookie is Secure, HSTS is sent", (st, sc))
bad = subprocess.run([RBK, "serve", "--listen", "nowhere"], env=env, capture_output=True, text=True, timeout=30)
check(bad.returncode == 2 and "ADDR:PORT" in bad.stderr, "a bad --listen is a usage error (exit 2)", bad.stderr)
bad = subprocess.run([RBK, "serve", "--listen", "127.0.0.1:0", "--tls-cert", crt], env=env, capture_output=True,
                     text=True, timeout=30)
check(bad.returncode == 2 and "both" in bad.stderr, "a certificate without its key is refused (exit 2)", bad.stderr)
