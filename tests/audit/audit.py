#!/usr/bin/env python3
"""The audit trail of rbk, black box (architecture.md "Audit"): stores built
by real runs (plain, failed, retried, polled, rolled back, aborted, approved,
rejected, calling child runs, killed and resumed) are then attacked, each
attack on a fresh copy of rbk.db, and `rbk verify` must name the first event
affected; seals, bundles, replay, the HTML report, history filters and
`rbk log --json` are checked on the same stores.

Run by tests/scripts/audit.sh: python3 audit.py TMPDIR. Prints `ok NAME` /
`FAIL NAME: why`.

The stores are on the test run's backend (tests/lib/storedb.py): SQLite in
each home, or with RBK_STORE a PostgreSQL URI (tests/run's PostgreSQL pass)
a schema of its own per home, each copy of a store a new schema (chain.py).
"""
import concurrent.futures as cf
import datetime as dt
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chain  # noqa: E402
import storedb  # noqa: E402  (chain.py put tests/lib on the path)

ROOT = os.environ["RBK_ROOT"]
TMP = sys.argv[1]


def private_binary(src):
    """A copy of the binary under test: others may relink it while we run
    (a half-written or missing file for a moment). Copied until it runs."""
    dst = os.path.join(TMP, "rbk")
    for _ in range(60):
        try:
            shutil.copyfile(src, dst + ".new")
            os.chmod(dst + ".new", 0o755)
            p = subprocess.run([dst + ".new", "--version"], capture_output=True, text=True, timeout=30)
            if p.returncode == 0 and p.stdout.startswith("rbk "):
                os.replace(dst + ".new", dst)
                # and its modules, found beside it (base/module.h)
                mods = os.path.join(os.path.dirname(os.path.abspath(src)), "modules")
                if os.path.isdir(mods):
                    shutil.copytree(mods, os.path.join(TMP, "modules"), dirs_exist_ok=True)
                return dst
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.5)
    return src


RBK = private_binary(os.environ["RBK"])
FX = os.path.join(ROOT, "tests/fixtures/run")
SEED = int(os.environ.get("RBK_AUDIT_SEED", time.time_ns() % 1000000))
RANDOM_TAMPERS = int(os.environ.get("RBK_AUDIT_TAMPERS", 220))
WORKERS = max(3, min(6, 2 * (os.cpu_count() or 2)))

ENV = {k: v for k, v in os.environ.items() if k not in ("RBK_CRASH_POINT", "RBK_TEST_TOKEN", "RBK_TEST_REGION", "RBK_HOME")}
ENV.update(RBK_PATH=FX, RBK_PLUGIN_PATH=f"{ROOT}/build/plugins:{ROOT}/build/test-plugins", NO_COLOR="1")
ENV.setdefault("ASAN_OPTIONS", "detect_leaks=0")

sanitizer = []  # sanitizer reports, whatever the command

# PostgreSQL: the store of each home (a schema's URL); SQLite: none (HOME/rbk.db).
HOME_STORE = {}


def open_db(home, missing_ok=False):
    """home's store, as storedb gives it (None when missing_ok and absent)."""
    return storedb.connect(home, timeout=10, missing_ok=missing_ok, store=HOME_STORE.get(home))


def unbatch(kind, data):
    """An event as rows give it (bytes) -> [(kind, data)] as readers of the
    timeline see it: a batch of pure events is the events it holds."""
    if kind != b"batch":
        return [(kind.decode(), json.loads(data))]
    return [(e["kind"], e["data"]) for e in json.loads(data)["events"]]


def open_chain(home):
    """home's store for chain.py (text as bytes)."""
    return chain.connect(os.path.join(home, "rbk.db"), HOME_STORE.get(home))

# Several people are several OS users: rbk records the user running it
# (docs/security.md). audit.sh creates rbk-alice, rbk-bob and rbk-carol (group
# rbk-team) when it runs as root, and says so in RBK_TEST_PEOPLE; without them
# the runs of "alice" are root's, and the approvals only alice or another
# person may answer are left out.
PEOPLE = os.environ.get("RBK_TEST_PEOPLE") == "1"


def as_user(user):
    return ["setpriv", f"--reuid={user}", "--regid=rbk-team", "--init-groups", "--"] if user and PEOPLE else []


def out(line):
    print(line, flush=True)


def ok(name):
    out(f"ok {name}")


def fail(name, why=""):
    why = " | ".join(str(why).strip().splitlines())[:1500]
    out(f"FAIL {name}{': ' + why if why else ''}")


def check(name, cond, why=""):
    ok(name) if cond else fail(name, why)
    return cond


def rbk(args, home=None, env=None, cwd=None, timeout=60, user=None):
    e = dict(ENV)
    if home:
        e["RBK_HOME"] = home
    h = home or (args[args.index("--home") + 1] if "--home" in args else None)
    if h in HOME_STORE:
        e["RBK_STORE"] = HOME_STORE[h]
    if user and PEOPLE:
        e["HOME"] = "/nonexistent"
    e.update(env or {})
    p = subprocess.run(as_user(user) + [RBK] + args, env=e, cwd=cwd or ROOT, capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, encoding="utf-8", errors="replace")
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        sanitizer.append(f"rbk {' '.join(args)}: {p.stderr[-800:]}")
    return p


def fx(name):
    return os.path.join(FX, name + ".yaml")


def runs_table(home):
    db = open_db(home)
    rows = db.execute("SELECT id, runbook, status, actor, created_at, parent_run FROM runs ORDER BY id").fetchall()
    db.close()
    return [dict(zip(("id", "runbook", "status", "actor", "created_at", "parent_run"), r)) for r in rows]


# ---------------------------------------------------------------------------
# Building stores with real runs
# ---------------------------------------------------------------------------

RC = {"succeeded": 0, "failed": 1, "aborted": 1, "rolled_back": 3, "waiting": 4, "needs_attention": 4, "killed": -9}


class Store:
    def __init__(self, name):
        self.name = name
        self.home = os.path.join(TMP, "stores", name)
        os.makedirs(self.home)
        self.ledger = os.path.join(self.home, "ledger")
        store = storedb.fresh_store()
        if store:
            HOME_STORE[self.home] = store
        if PEOPLE:  # a home the team shares, and a ledger everyone appends to
            os.chown(self.home, -1, int(subprocess.check_output(["getent", "group", "rbk-team"], text=True).split(":")[2]))
            os.chmod(self.home, 0o2770)
            open(self.ledger, "a").close()
            os.chmod(self.ledger, 0o666)
        self.problems = []
        self.want = {}  # run id -> the status history must show at the end
        self.groups = {}  # run id -> time group (history store)
        self.group = 0

    def ids(self):
        db = open_db(self.home, missing_ok=True)
        if db is None:
            return []
        db.close()
        return [r["id"] for r in runs_table(self.home)]

    def cmd(self, args, want, env=None, user=None):
        """Run an rbk command (as user, see PEOPLE); want: the final status it
        should report through its exit code. Returns the ids of the runs it
        created."""
        before = set(self.ids())
        p = rbk(args, self.home, env, user=user)
        if p.returncode != RC[want]:
            self.problems.append(f"rbk {' '.join(args)} (env {env}): exit {p.returncode}, want {RC[want]} "
                                 f"({want}): {p.stdout[-300:]} {p.stderr[-300:]}")
        new = sorted(set(self.ids()) - before)
        for i in new:
            self.groups[i] = self.group
        return new

    def run(self, rb, *params, want="succeeded", env=None, extra=(), status=None, user=None):
        args = ["run", fx(rb)] + [a for kv in params for a in ("-p", kv)] + list(extra)
        new = self.cmd(args, want, env, user)
        if new:
            self.want[new[0]] = status or ("interrupted" if want == "killed" else want)
        return new[0] if new else 0

    def then(self, args, want, run, status=None, env=None, user=None):
        self.cmd(args, want, env, user)
        self.want[run] = status or want

    def children(self, parent):
        return [r["id"] for r in runs_table(self.home) if r["parent_run"] == parent]


def build_basics(s):
    L = f"ledger={s.ledger}"
    s.run("kinds", L, "mode=a")
    s.run("kinds", L, "mode=b")
    s.run("kinds", L, "mode=c", want="failed")
    s.run("edges", L)
    s.run("edges", L, "which=default")
    s.run("edges", L, "which=fail", want="failed")
    s.run("nomatch", L, want="failed")
    s.run("nomatch", L, "where=action", want="failed")
    s.run("set")
    s.run("vars")
    s.run("params", "name=abc")


def build_crash_mark(s):
    """Killed after a non-idempotent step started; resumed by an operator's decision."""
    L = f"ledger={s.ledger}"
    crash1 = {"RBK_CRASH_POINT": "step.after_start:1"}
    r = s.run("interrupt", L, want="killed", env=crash1)
    s.then(["resume", str(r)], "needs_attention", r)
    s.then(["resume", str(r), "--mark-step", "success"], "succeeded", r)
    r = s.run("interrupt", L, want="killed", env={"RBK_CRASH_POINT": "step.after_start:2"})
    s.then(["resume", str(r)], "needs_attention", r)
    s.then(["resume", str(r), "--mark-step", "failure"], "failed", r)
    r = s.run("interrupt", L, want="killed", env=crash1)
    s.then(["resume", str(r), "--retry-step"], "succeeded", r)
    s.run("kinds", L)


def build_crash_idem(s):
    """Killed at other points; resumed without a decision."""
    L = f"ledger={s.ledger}"
    r = s.run("interrupt", L, "idem=true", want="killed", env={"RBK_CRASH_POINT": "step.after_start:2"})
    s.then(["resume", str(r)], "succeeded", r)
    r = s.run("edges", L, want="killed", env={"RBK_CRASH_POINT": "result.after_commit:1"})
    s.then(["resume", str(r)], "succeeded", r)
    r = s.run("edges", L, want="killed", env={"RBK_CRASH_POINT": "result.before_commit:1"})
    s.then(["resume", str(r)], "succeeded", r)
    s.run("crash", L, want="failed")


def build_rollback(s):
    L = f"ledger={s.ledger}"
    s.run("rollback", L, want="rolled_back")
    s.run("rollback", L, "undo_fail=true", want="failed", status=None)
    r = s.run("rollback", L, want="killed", env={"RBK_CRASH_POINT": "undo.after_start:1"})
    s.then(["resume", str(r)], "needs_attention", r)
    s.then(["resume", str(r), "--mark-step", "success"], "rolled_back", r)
    r = s.run("abort", L, want="waiting")
    s.then(["abort", str(r), "--rollback"], "rolled_back", r)
    r = s.run("abort", L, want="waiting")
    s.then(["abort", str(r)], "aborted", r)


def build_approvals(s):
    L = f"ledger={s.ledger}"
    r = s.run("approval", L, want="waiting")
    s.then(["approve", str(r), "--comment", "looks fine"], "succeeded", r, user="rbk-carol")
    r = s.run("approval", L, "why=true", want="waiting")
    s.then(["reject", str(r), "--comment", "not now"], "failed", r)
    if PEOPLE:
        r = s.run("approval", L, "who=alice", want="waiting", user="rbk-bob")
        s.then(["approve", str(r)], "succeeded", r, user="rbk-alice")
        r = s.run("approval", L, "who=distinct", want="waiting")
        s.then(["approve", str(r)], "succeeded", r, user="rbk-bob")
    r = s.run("lock", L, want="waiting")
    s.then(["approve", str(r)], "succeeded", r)


def build_calls(s):
    L = f"ledger={s.ledger}"
    for outcome, st in (("ok", "succeeded"), ("fail", "failed")):
        r = s.run("call-parent", L, f"outcome={outcome}", want=st)
        for c in s.children(r):
            s.want[c] = "succeeded" if outcome == "ok" else "failed"
    r = s.run("call-parent", L, "outcome=ask", want="waiting")
    kids = s.children(r)
    if len(kids) != 1:
        s.problems.append(f"call-parent outcome=ask: children {kids}")
        return
    s.want[kids[0]] = "waiting"
    s.then(["approve", str(kids[0])], "succeeded", kids[0])
    s.want[r] = "succeeded"
    s.run("call-child", L)


def build_call_crash(s):
    """A child run killed inside its step: the child is resumed by decision
    and the parent continues."""
    L = f"ledger={s.ledger}"
    r = s.run("call-parent", L, want="killed", env={"RBK_CRASH_POINT": "step.after_start:2"})
    kids = s.children(r)
    if len(kids) != 1:
        s.problems.append(f"call-parent crash: children {kids}")
        return
    c = kids[0]
    s.then(["resume", str(c)], "needs_attention", c)
    s.then(["resume", str(c), "--mark-step", "success"], "succeeded", c)
    s.want[r] = "succeeded"
    r = s.run("call-parent", L, want="killed", env={"RBK_CRASH_POINT": "step.after_start:3"})
    for c in s.children(r):
        s.want[c] = "succeeded"
    s.then(["resume", str(r)], "needs_attention", r)
    s.then(["resume", str(r), "--mark-step", "success"], "succeeded", r)


def build_retry_poll(s):
    L = f"ledger={s.ledger}"
    with open(os.path.join(s.home, "flag"), "w") as f:
        f.write("ready\n")
    s.run("retry", L, f"counter={s.home}/c1", "succeed_on=3")
    s.run("retry", L, f"counter={s.home}/c2", want="failed")
    s.run("poll", f"flag={s.home}/flag", "short=true")
    s.run("poll", f"flag={s.home}/noflag", "short=true", want="failed")
    s.run("timeout", L, want="failed")


def build_waits(s):
    """A durable wait killed with SIGKILL and resumed; timeouts; a dry run; a secret."""
    L = f"ledger={s.ledger}"
    before = set(s.ids())
    e = dict(ENV, RBK_HOME=s.home)
    if s.home in HOME_STORE:
        e["RBK_STORE"] = HOME_STORE[s.home]
    p = subprocess.Popen([RBK, "run", fx("wait-short"), "-p", L], env=e, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:  # kill it during its durable wait
        time.sleep(0.05)
        try:
            db = open_db(s.home)
            waiting = db.execute("SELECT COUNT(*) FROM events WHERE kind='wait_started'").fetchone()[0]
            db.close()
        except (sqlite3.Error, storedb.Error):
            waiting = 0
        if waiting:
            break
    time.sleep(0.2)
    p.kill()  # our own child, by its pid
    p.wait()
    new = sorted(set(s.ids()) - before)
    if len(new) != 1:
        s.problems.append(f"wait-short killed: runs {new}")
    else:
        s.groups[new[0]] = 0
        s.then(["resume", str(new[0])], "succeeded", new[0])
    s.run("dryrun", L, extra=["--dry-run"])
    s.run("secret", env={"RBK_TEST_TOKEN": "s3cret-token"})
    s.run("timeout", L, "hang=true", want="failed")
    s.run("lock", L, "ask=false")


def build_history(s):
    """Three groups of runs more than a second apart, by several actors, some
    left unfinished, for the history filters."""
    L = f"ledger={s.ledger}"
    s.group = 0
    s.run("kinds", L)
    s.run("kinds", L, "mode=c", want="failed", user="rbk-alice")
    s.run("edges", L, user="rbk-bob")
    time.sleep(1.25)
    s.group = 1
    s.run("rollback", L, want="rolled_back", user="rbk-alice")
    s.run("approval", L, want="waiting", user="rbk-bob")
    s.run("interrupt", L, want="killed", env={"RBK_CRASH_POINT": "step.after_start:1"})
    r = s.run("interrupt", L, want="killed", env={"RBK_CRASH_POINT": "step.after_start:1"}, user="rbk-alice")
    s.then(["resume", str(r)], "needs_attention", r)
    time.sleep(1.25)
    s.group = 2
    r = s.run("call-parent", L, user="rbk-carol")
    for c in s.children(r):
        s.want[c] = "succeeded"
    s.run("set", user="rbk-carol")
    s.run("kinds", L, "mode=b")


BUILDERS = [("basics", build_basics), ("crash-mark", build_crash_mark), ("crash-idem", build_crash_idem),
            ("rollback", build_rollback), ("approvals", build_approvals), ("calls", build_calls),
            ("call-crash", build_call_crash), ("retry-poll", build_retry_poll), ("waits", build_waits),
            ("history", build_history)]


def build_all():
    stores = {}

    def one(item):
        name, fn = item
        s = Store(name)
        try:
            fn(s)
        except Exception as e:  # a setup failure is reported, the rest goes on
            s.problems.append(f"{type(e).__name__}: {e}")
        return s

    with cf.ThreadPoolExecutor(max_workers=len(BUILDERS)) as ex:
        for s in ex.map(one, BUILDERS):
            stores[s.name] = s
    for s in stores.values():
        table = {r["id"]: r for r in runs_table(s.home)}
        for rid, st in s.want.items():
            r = table.get(rid)
            shown = r["status"] if r else None
            if shown == "running":
                shown = "interrupted"  # its owner is dead: shown as interrupted
            if shown != st:
                s.problems.append(f"run {rid} ({r and r['runbook']}) is {r and r['status']}, want {st}")
        unexplained = set(table) - set(s.want)
        if unexplained:
            s.problems.append(f"runs without an expectation: {sorted(unexplained)}")
        check(f"store '{s.name}' built by real runs ({len(table)} runs, statuses as expected)", not s.problems,
              "; ".join(s.problems))
    return stores


# ---------------------------------------------------------------------------
# rbk verify
# ---------------------------------------------------------------------------

VERIFY_LINE = re.compile(r"^chain broken at event (\d+): ")


def verify(home, *extra):
    p = rbk(["verify", "--home", home] + list(extra))
    return p.returncode, (p.stdout + p.stderr).strip()


def named(rc, text):
    m = VERIFY_LINE.match(text)
    return int(m.group(1)) if rc == 1 and m else None


def clean_stores(stores):
    bad = []
    for s in stores.values():
        db = open_chain(s.home)
        n, first_bad = chain.recompute_ok(db)
        db.close()
        rc, text = verify(s.home)
        pj = rbk(["verify", "--home", s.home, "--json"])
        try:
            j = json.loads(pj.stdout)
        except ValueError:
            j = {}
        if first_bad:
            bad.append(f"{s.name}: our own recomputation of the chain fails at event {first_bad}")
        if rc != 0 or not text.startswith(f"{n} events, chain intact"):
            bad.append(f"{s.name}: exit {rc}: {text}")
        if pj.returncode != 0 or j.get("intact") is not True or j.get("events") != n or j.get("first_bad_event") != 0:
            bad.append(f"{s.name} --json: exit {pj.returncode}: {pj.stdout}")
    check(f"no false positive: rbk verify exits 0 on all {len(stores)} clean stores (the chain recomputed "
          "independently agrees)", not bad, "; ".join(bad))
    return len(bad)


class Lab:
    """Fresh copies of a store's template, numbered."""

    def __init__(self, stores):
        self.root = os.path.join(TMP, "lab")
        os.makedirs(self.root)
        self.templates = {}
        self.n = 0
        for s in stores.values():
            t = os.path.join(self.root, f"{s.name}.template.db")
            self.templates[s.name] = chain.make_template(s.home, t, HOME_STORE.get(s.home))

    def copy(self, store, template=None):
        self.n += 1
        home = os.path.join(self.root, f"c{self.n}")
        url, db = chain.fresh_copy(template or self.templates[store], home)
        if url:
            HOME_STORE[home] = url
        return home, db

    @staticmethod
    def discard(home):
        shutil.rmtree(home, ignore_errors=True)
        storedb.drop_store(HOME_STORE.pop(home, None))

    def events(self, store):
        t = self.templates[store]
        db = chain.connect(t, t if storedb.is_pg(t) else None)
        ev = chain.events(db)
        db.close()
        return ev


def parallel(fn, items):
    with cf.ThreadPoolExecutor(max_workers=WORKERS) as ex:
        return list(ex.map(fn, items))


def flip_one(db, seq, field):
    """One byte changed to another printable one, in the middle of the field."""
    if field == "run_id":
        return chain.change_byte(db, seq, field, rnd=random.Random(seq))
    v = bytes(chain.get(db, seq, field))
    i = len(v) // 2
    chain.put(db, seq, field, v[:i] + (b"x" if v[i:i + 1] != b"x" else b"y") + v[i + 1:])


def targeted(lab, store):
    """Every kind of tampering at the start, middle and end, each on a fresh copy."""
    ev = lab.events(store)
    n = len(ev)
    mid = n // 2
    cases = []  # (name, tamper(db), want_rc, want_seq, want text)
    for pos_name, seq in (("start", 1), ("middle", mid), ("end", n)):
        for field in chain.FIELDS:
            why = ("its prev_hash is not" if field == "prev_hash" else "was modified")
            cases.append((f"one byte of {field} of the event at the {pos_name} (event {seq})",
                          (lambda db, seq=seq, field=field: flip_one(db, seq, field)), 1, seq, why))
    if store == "crash-mark":
        cases.append(("the head event's hash holding a '\"' (--json must stay JSON)",
                      lambda db: chain.put(db, n, "hash", chain.get(db, n, "hash")[:10] + b'"' + chain.get(db, n, "hash")[11:]),
                      1, n, "was modified"))
    cases += [
        ("the first event deleted", lambda db: chain.delete(db, 1), 1, 1, "event 1 was removed"),
        (f"a middle event deleted (event {mid})", lambda db: chain.delete(db, mid), 1, mid, f"event {mid} was removed"),
        (f"three middle events deleted ({mid}..{mid + 2})",
         lambda db: [chain.delete(db, q) for q in (mid, mid + 1, mid + 2)], 1, mid, f"events {mid} to {mid + 2} were removed"),
    ]
    # Insertions of a well-formed event (prev_hash and hash right for it):
    # the event after it is the first whose prev_hash does not follow.
    def ins(at_seq):
        src = ev[at_seq - 1]
        return lambda db: chain.insert(db, at_seq, src[1], src[2], src[3], b"step_finished",
                                       b'{"state":"approve","attempt":1,"status":"success"}')
    cases += [
        ("a well-formed event inserted at the start", ins(1), 1, 2, "event 2: its prev_hash is not the hash of event 1"),
        (f"a well-formed event inserted in the middle (as event {mid})", ins(mid), 1, mid + 1,
         f"event {mid + 1}: its prev_hash is not the hash of event {mid}"),
    ]
    a, b = mid - 2, mid + 3
    cases += [
        (f"two events swapped, all columns ({a} and {b})", lambda db: chain.swap(db, a, b), 1, a, f"event {a}:"),
        (f"two adjacent events swapped ({mid} and {mid + 1})", lambda db: chain.swap(db, mid, mid + 1), 1, mid, f"event {mid}:"),
        (f"two events' contents swapped, hashes left in place ({a} and {b})",
         lambda db: chain.swap(db, a, b, cols=("run_id", "at", "actor", "kind", "data")), 1, a, f"event {a} was modified"),
        ("the first and last events swapped", lambda db: chain.swap(db, 1, n), 1, 1, "event 1:"),
    ]

    def change_rehash(seq):
        def f(db):
            chain.change_byte(db, seq, "data", rnd=random.Random(7))
            chain.rehash_own(db, seq)
        return f
    cases += [
        ("the first event changed and re-hashed: the next event is named", change_rehash(1), 1, 2,
         "event 2: its prev_hash is not the hash of event 1: an event was inserted or reordered, or event 1 was modified and re-hashed"),
        (f"a middle event changed and re-hashed (event {mid}): the next event is named", change_rehash(mid), 1, mid + 1,
         f"event {mid + 1}: its prev_hash is not the hash of event {mid}"),
        (f"a middle event's run_id moved to another run and re-hashed (event {mid})",
         lambda db: (chain.put(db, mid, "run_id", ev[mid - 1][1] + 1), chain.rehash_own(db, mid)), 1, mid + 1,
         f"event {mid + 1}: its prev_hash"),
        ("the last event changed and re-hashed: undetectable without a seal (a valid shorter history)",
         change_rehash(n), 0, None, f"{n} events, chain intact"),
        (f"the whole tail from event {mid} changed and re-hashed: undetectable without a seal",
         lambda db: (chain.change_byte(db, mid, "data", rnd=random.Random(3)), chain.rehash(db, mid)), 0, None,
         f"{n} events, chain intact"),
        ("the last event deleted: undetectable without a seal", lambda db: chain.truncate(db, 1), 0, None,
         f"{n - 1} events, chain intact"),
        (f"the last {n // 3} events deleted: undetectable without a seal", lambda db: chain.truncate(db, n // 3), 0, None,
         f"{n - n // 3} events, chain intact"),
    ]

    def run_case(case):
        name, tamper, want_rc, want_seq, want_text = case
        home, db = lab.copy(store)
        tamper(db)
        db.close()
        rc, text = verify(home)
        got = named(rc, text)
        good = rc == want_rc and (want_seq is None or got == want_seq) and want_text in text
        if good and want_rc == 1:  # --json names the same event
            pj = rbk(["verify", "--home", home, "--json"])
            try:
                j = json.loads(pj.stdout)
                good = pj.returncode == 1 and j["intact"] is False and j["first_bad_event"] == want_seq
                if not good:
                    text += f" | --json: exit {pj.returncode} {pj.stdout}"
            except (ValueError, KeyError):
                good, text = False, text + f" | --json is not JSON: {pj.stdout}"
        Lab.discard(home)
        return name, good, f"exit {rc} (want {want_rc}), names {got} (want {want_seq}, '{want_text}'): {text}"

    for name, good, why in parallel(run_case, cases):
        check(f"verify [{store}, {n} events]: {name}", good, why)
    return len(cases)


def random_loop(lab, stores):
    rnd = random.Random(SEED)
    names = sorted(stores)
    counts = {name: len(lab.events(name)) for name in names}
    plan = []
    for i in range(RANDOM_TAMPERS):
        store = names[i % len(names)]
        plan.append((i, store, rnd.randint(1, counts[store]), rnd.choice(chain.FIELDS), rnd.randrange(1 << 30), rnd.randrange(1 << 30)))

    def one(item):
        i, store, seq, field, pos, r = item
        home, db = lab.copy(store)
        what = chain.change_byte(db, seq, field, pos=pos, rnd=random.Random(r))
        db.close()
        rc, text = verify(home)
        Lab.discard(home)
        return store, seq, what, rc, named(rc, text), text

    results = parallel(one, plan)
    detected = sum(1 for r in results if r[3] == 1)
    right = sum(1 for r in results if r[3] == 1 and r[4] == r[1])
    missed = [f"{st} event {seq} {what}: exit {rc}: {text}" for st, seq, what, rc, got, text in results if rc != 1]
    wrong = [f"{st} event {seq} {what}: named {got}: {text}" for st, seq, what, rc, got, text in results
             if rc == 1 and got != seq]
    check(f"random single-byte tamperings (seed {SEED}): {detected}/{len(results)} detected (exit 1)",
          detected == len(results) and len(results) >= 200, "; ".join(missed[:5]))
    check(f"random single-byte tamperings: {right}/{len(results)} name the tampered event", right == len(results),
          "; ".join(wrong[:5]))
    return len(results), detected, right


def seals(lab, store):
    """A seal in git makes truncation and tail rewrites detectable."""
    ev = lab.events(store)
    n = len(ev)
    mid = n // 2
    repo = os.path.join(TMP, "seal-repo")
    # Seal a copy of the store at its head.
    shome, db = lab.copy(store)
    db.close()
    p = rbk(["audit", "seal", "--git", repo, "--home", shome])
    check("rbk audit seal --git DIR commits the chain head", p.returncode == 0 and f"sealed event {n} " in p.stdout
          and os.path.isdir(os.path.join(repo, ".git")), f"exit {p.returncode}: {p.stdout} {p.stderr}")
    sealed_tpl = os.path.join(lab.root, "sealed.template.db")
    sealed_tpl = chain.make_template(shome, sealed_tpl, HOME_STORE.get(shome))
    rc, text = verify(shome)
    check("verify of the sealed store: intact, sealed at its head", rc == 0 and f"sealed at event {n}" in text, text)
    # An earlier seal, in another repository: the store cut at `mid` is a
    # valid chain, sealed there.
    repo2 = os.path.join(TMP, "seal-repo-early")
    ehome, db = lab.copy(store)
    chain.truncate(db, n - mid)
    db.close()
    p = rbk(["audit", "seal", "--git", repo2, "--home", ehome])
    check("a seal of the chain at an earlier event", p.returncode == 0 and f"sealed event {mid} " in p.stdout,
          f"{p.stdout} {p.stderr}")

    # A broken chain is not sealed.
    bhome, db = lab.copy(store)
    chain.change_byte(db, mid, "data", rnd=random.Random(1))
    db.close()
    p = rbk(["audit", "seal", "--git", os.path.join(TMP, "seal-never"), "--home", bhome])
    check("a broken chain is not sealed (exit 1, names the event)", p.returncode == 1 and f"event {mid}" in p.stderr
          and not os.path.exists(os.path.join(TMP, "seal-never", "rbk-chain-seal")), f"exit {p.returncode}: {p.stdout} {p.stderr}")

    cases = []
    for k in (1, 3, n // 3):
        cases.append((f"the last {k} events removed after the seal: truncation named",
                      sealed_tpl, [], lambda db, k=k: chain.truncate(db, k), 1,
                      f"chain broken: the store ends at event {n - k} but was sealed at event {n}: events after {n - k} "
                      "were removed (truncation)"))
        cases.append((f"the last {k} events removed; verify --git with the seal repository given",
                      None, ["--git", repo], lambda db, k=k: chain.truncate(db, k), 1,
                      f"the store ends at event {n - k} but was sealed at event {n}"))
    cases += [
        (f"the tail re-hashed after a change at event {mid}, seal covering it",
         sealed_tpl, [], lambda db: (chain.change_byte(db, mid, "data", rnd=random.Random(5)), chain.rehash(db, mid)), 1,
         f"chain broken: event {n} no longer has the hash it was sealed with"),
        ("the last event changed and re-hashed, seal covering it",
         sealed_tpl, [], lambda db: (chain.change_byte(db, n, "at", rnd=random.Random(5)), chain.rehash(db, n)), 1,
         f"event {n} no longer has the hash it was sealed with"),
        (f"the tail re-hashed after a change at event {mid // 2}, early seal (event {mid}) covering it",
         None, ["--git", repo2], lambda db: (chain.change_byte(db, mid // 2, "kind", rnd=random.Random(5)),
                                            chain.rehash(db, mid // 2)), 1,
         f"event {mid} no longer has the hash it was sealed with"),
        (f"the tail re-hashed after a change at event {mid + 2}, after the early seal: not detectable (documented)",
         None, ["--git", repo2], lambda db: (chain.change_byte(db, mid + 2, "data", rnd=random.Random(5)),
                                            chain.rehash(db, mid + 2)), 0,
         f"{n} events, chain intact; head"),
        ("events removed and the chain regrown with other events after the seal",
         sealed_tpl, [], lambda db: (chain.truncate(db, 2), chain.insert(db, n - 1, ev[-2][1], ev[-2][2], ev[-2][3], b"note", b"{}"),
                                     chain.insert(db, n, ev[-1][1], ev[-1][2], ev[-1][3], b"note", b"{}")), 1,
         f"event {n} no longer has the hash it was sealed with"),
        ("a middle event changed, sealed store: the chain check names it first",
         sealed_tpl, [], lambda db: chain.change_byte(db, mid, "actor", rnd=random.Random(5)), 1,
         f"chain broken at event {mid}: event {mid} was modified"),
        ("a sealed store left untouched is intact", sealed_tpl, [], lambda db: None, 0, f"sealed at event {n}"),
    ]

    def one(case):
        name, tpl, extra, tamper, want_rc, want_text = case
        home, db = lab.copy(store, tpl)
        tamper(db)
        db.close()
        rc, text = verify(home, *extra)
        return name, rc == want_rc and want_text in text, f"exit {rc} (want {want_rc}, '{want_text}'): {text}"

    for name, good, why in parallel(one, cases):
        check(f"seal: {name}", good, why)
    return shome


# ---------------------------------------------------------------------------
# rbk replay, export / verify --bundle, report --html, history, log --json
# ---------------------------------------------------------------------------

FINISHED = ("succeeded", "failed", "rolled_back", "aborted")


def replays(stores):
    bad, n = [], 0
    items = [(s, r["id"]) for s in stores.values() for r in runs_table(s.home)
             if r["parent_run"] is None and r["status"] in FINISHED]

    def one(item):
        s, rid = item
        p = rbk(["replay", str(rid)], s.home)
        return s.name, rid, p.returncode, (p.stdout + p.stderr).strip()

    for name, rid, rc, text in parallel(one, items):
        n += 1
        if rc != 0 or "0 divergences" not in text:
            bad.append(f"[{name} run {rid}: exit {rc}: {text[-400:]}]")
    check(f"rbk replay exits 0 with 0 divergences on all {n} finished top-level runs of the stores "
          "(crashed/resumed, rolled back, aborted, approved, calling)", not bad and n >= 40, f"{n} runs; " + " ".join(bad))


def bundles(stores, sealed_home):
    other = os.path.join(TMP, "other-machine")
    empty_home = os.path.join(other, "empty-home")
    os.makedirs(empty_home)
    picks = []  # (store home, run id, why)
    for sname, pick in (("crash-mark", lambda rs: rs[0]), ("calls", lambda rs: rs[0]), ("call-crash", lambda rs: rs[1]),
                        ("rollback", lambda rs: rs[2]), ("approvals", lambda rs: rs[0]), ("basics", lambda rs: rs[-1])):
        rs = runs_table(stores[sname].home)
        r = pick(rs)
        picks.append((stores[sname].home, r["id"], f"{sname} run {r['id']} ({r['runbook']}, {r['status']})"))
    rs = runs_table(sealed_home)
    picks.append((sealed_home, rs[len(rs) // 2]["id"], f"sealed store run {rs[len(rs) // 2]['id']}"))

    def vb(path):
        p = rbk(["verify", "--bundle", path], empty_home, cwd=other)
        return p.returncode, (p.stdout + p.stderr).strip()

    made = []
    for home, rid, label in picks:
        f = os.path.join(TMP, f"bundle-{len(made)}.json")
        p = rbk(["export", str(rid), "-o", f], home)
        if not check(f"export {label}", p.returncode == 0 and os.path.exists(f) and p.stdout == "",
                     f"exit {p.returncode}: {p.stdout} {p.stderr}"):
            continue
        dst = os.path.join(other, os.path.basename(f))
        shutil.copyfile(f, dst)
        with open(dst) as fh:
            b = json.load(fh)
        db = open_chain(home)
        want_seqs = [r[0] for r in db.execute("SELECT seq FROM events WHERE run_id=? ORDER BY seq", (rid,))]
        db.close()
        rc, text = vb(dst)
        sealed = label.startswith("sealed")
        check(f"verify --bundle of {label} on another machine (empty RBK_HOME): intact",
              rc == 0 and "intact" in text and "broken" not in text and [e["seq"] for e in b["events"]] == want_seqs
              and b["proof_end"]["sealed"] is sealed and (", which was sealed" in text) is sealed,
              f"exit {rc}: {text}; events {[e['seq'] for e in b['events']]} vs store {want_seqs}")
        made.append((label, dst, b))
    check("verify --bundle needs no store: the auditor's RBK_HOME stays empty", os.listdir(empty_home) == [],
          str(os.listdir(empty_home)))

    # Tamper with copies of the bundles.
    cases = []
    for k, (label, path, b) in enumerate(made[:3]):
        evs = b["events"]
        m = len(evs) // 2

        def mutate(fn, b=b):
            c = json.loads(json.dumps(b))
            fn(c)
            return c

        def flip(s, i=None):
            i = len(s) // 2 if i is None else i
            return s[:i] + ("X" if s[i] != "X" else "Y") + s[i + 1:]

        mseq = evs[m]["seq"]
        if k:  # the other bundles: one event, one link, the source
            cases.append((f"{label}: one byte of data of event {mseq} changed",
                          mutate(lambda c: c["events"][m].__setitem__("data", flip(c["events"][m]["data"]))), f"event {mseq}"))
            if b["links"]:
                li = len(b["links"]) // 2
                cases.append((f"{label}: one byte of a link's hash changed (link {b['links'][li]['seq']})",
                              mutate(lambda c: c["links"][li].__setitem__("hash", flip(c["links"][li]["hash"]))), ""))
            cases.append((f"{label}: one byte of the source changed",
                          mutate(lambda c: c.__setitem__("source", flip(c["source"]))), "source"))
            cases.append((f"{label}: the first event removed", mutate(lambda c: c["events"].pop(0)), ""))
            continue
        for field in ("data", "at", "actor", "kind", "hash", "prev_hash"):
            cases.append((f"{label}: one byte of {field} of event {mseq} changed",
                          mutate(lambda c, f=field: c["events"][m].__setitem__(f, flip(c["events"][m][f]))),
                          f"event {mseq}" if field in ("data", "at", "actor", "kind", "prev_hash", "hash") else ""))
        cases.append((f"{label}: the run number of event {mseq} changed",
                      mutate(lambda c: c["events"][m].__setitem__("run", c["events"][m]["run"] + 1)), f"event {mseq}"))
        cases.append((f"{label}: the seq of event {mseq} changed",
                      mutate(lambda c: c["events"][m].__setitem__("seq", c["events"][m]["seq"] + 1)), ""))
        if b["links"]:
            li = len(b["links"]) // 2
            cases.append((f"{label}: one byte of a link's hash changed (link {b['links'][li]['seq']})",
                          mutate(lambda c: c["links"][li].__setitem__("hash", flip(c["links"][li]["hash"]))), ""))
            cases.append((f"{label}: one byte of a link's prev_hash changed",
                          mutate(lambda c: c["links"][li].__setitem__("prev_hash", flip(c["links"][li]["prev_hash"]))), ""))
            cases.append((f"{label}: a link removed", mutate(lambda c: c["links"].pop(li)), ""))
        cases.append((f"{label}: one byte of the source changed", mutate(lambda c: c.__setitem__("source", flip(c["source"]))),
                      "source"))
        cases.append((f"{label}: the first event removed", mutate(lambda c: c["events"].pop(0)), ""))
        cases.append((f"{label}: a middle event removed (event {mseq})", mutate(lambda c: c["events"].pop(m)), ""))
        cases.append((f"{label}: the last event removed (event {evs[-1]['seq']})", mutate(lambda c: c["events"].pop()), ""))
        fin = [e for e in evs if e["kind"] == "run_finished"]
        cases.append((f"{label}: the run number in the bundle's run summary changed (the events are run {b['run']['run']}'s)",
                      mutate(lambda c: c["run"].__setitem__("run", c["run"]["run"] + 100)), ""))
        if fin:
            other_status = "failed" if b["run"]["status"] == "succeeded" else "succeeded"
            cases.append((f"{label}: the status in the bundle's run summary changed to {other_status} (its run_finished "
                          f"event says {json.loads(fin[-1]['data']).get('status')})",
                          mutate(lambda c: c["run"].__setitem__("status", other_status)), ""))
        cases.append((f"{label}: the proof's end changed", mutate(lambda c: c["proof_end"].__setitem__(
            "hash", flip(c["proof_end"]["hash"]))), ""))

    def one(item):
        i, (name, content, want) = item
        path = os.path.join(other, f"t{i}.json")
        with open(path, "w") as fh:
            json.dump(content, fh)
        rc, text = vb(path)
        return name, rc == 1 and "broken" in text and want in text, f"exit {rc} (want 1, '{want}'): {text}"

    for name, good, why in parallel(one, list(enumerate(cases))):
        check(f"verify --bundle detects: {name}", good, why)


def reports(stores):
    items = []
    for sname, idx in (("calls", 0), ("crash-mark", 0), ("rollback", 2), ("waits", 0)):
        r = runs_table(stores[sname].home)[idx]
        items.append((stores[sname], r))
    for s, r in items:
        f = os.path.join(TMP, f"report-{s.name}-{r['id']}.html")
        p = rbk(["report", str(r["id"]), "--html", "-o", f], s.home)
        html = open(f, encoding="utf-8", errors="replace").read() if os.path.exists(f) else ""
        db = open_chain(s.home)
        evs = [(at.decode(), k) for at, kind, data in
               db.execute("SELECT at, kind, data FROM events WHERE run_id=? ORDER BY seq", (r["id"],)).fetchall()
               for k, _ in unbatch(kind, data)]
        db.close()
        missing = []
        pos = 0
        for at, kind in evs:
            line = re.compile(re.escape(f"{at[:10]} {at[11:23]}") + r"\s+" + re.escape(kind) + r"\b")
            m = line.search(html, pos)
            if not m:
                missing.append(f"{at} {kind}")
            else:
                pos = m.end()
        svgs = html.count("<svg")
        good = (p.returncode == 0 and p.stdout == "" and html.lstrip().lower().startswith("<!doctype html>")
                and html.lower().count("<html") == 1 and html.rstrip().endswith("</html>") and svgs == 1
                and "</svg>" in html and not missing and f"Run {r['id']}: {r['runbook']}" in html)
        check(f"report --html of {s.name} run {r['id']} ({r['runbook']}): one page, one <svg>, all {len(evs)} events "
              "in order", good, f"exit {p.returncode}, stdout {len(p.stdout)} bytes, {svgs} <svg>, "
              f"missing events {missing[:4]}, {p.stderr[-300:]}")


def parse_t(t):
    """A --since/--until bound as an instant (missing parts are zero)."""
    t = t.rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(t, fmt)
        except ValueError:
            pass
    raise ValueError(t)


def history(s):
    truth = []
    for r in runs_table(s.home):
        truth.append(dict(r, shown=s.want.get(r["id"]), group=s.groups.get(r["id"]), t=parse_t(r["created_at"])))
    by_group = [[r for r in truth if r["group"] == g] for g in range(3)]
    # Bounds inside the gaps between the groups, to the second.
    def gap(a, b):
        t = max(r["t"] for r in a).replace(microsecond=0) + dt.timedelta(seconds=1)
        return t.strftime("%Y-%m-%dT%H:%M:%S") if t < min(r["t"] for r in b) else None
    b1, b2 = gap(by_group[0], by_group[1]), gap(by_group[1], by_group[2])
    if not check("history store: three groups of runs with a gap of a second between them", b1 and b2 and all(by_group),
                 f"{b1} {b2}"):
        return
    day = truth[0]["created_at"][:10]
    next_day = (truth[0]["t"] + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    minute = truth[0]["created_at"][:16]
    default_actor = truth[0]["actor"]

    def expect(runbook=None, status=None, actor=None, since=None, until=None, limit=None):
        rs = [r for r in truth if (runbook is None or r["runbook"] == runbook) and (status is None or r["shown"] == status)
              and (actor is None or r["actor"] == actor or ("@" not in actor and r["actor"].split("@")[0] == actor)) and (since is None or r["t"] >= parse_t(since))
              and (until is None or r["t"] < parse_t(until))]
        rs = sorted(rs, key=lambda r: -r["id"])
        return [r["id"] for r in rs[:limit]] if limit else [r["id"] for r in rs]

    filters = [dict(), dict(limit=3), dict(limit=1), dict(runbook="kinds"), dict(runbook="interrupt"), dict(runbook="call-child"),
               dict(runbook="no-such-runbook"), dict(actor="rbk-alice"), dict(actor="rbk-bob"), dict(actor="rbk-carol"),
               dict(actor=default_actor), dict(actor=default_actor.split("@")[0]), dict(actor="rbk-alice", limit=2),
               dict(runbook="kinds", actor="rbk-alice"), dict(actor="rbk-alice@elsewhere.example")]
    for st in ("succeeded", "failed", "rolled_back", "waiting", "needs_attention", "interrupted", "running"):
        filters.append(dict(status=st))
    filters += [dict(since=b1), dict(until=b1), dict(since=b1, until=b2), dict(since=b2), dict(since=b1, until=b2, actor="rbk-alice"),
                dict(since=b1, limit=2), dict(since=day), dict(until=day), dict(until=next_day), dict(since=next_day),
                dict(since=minute), dict(since=b1, runbook="interrupt", status="needs_attention")]
    for f in filters:
        args = ["history", "--json"]
        for k in ("runbook", "status", "actor", "since", "until", "limit"):
            if k in f:
                args += [f"--{k}", str(f[k])]
        want = expect(**f)
        p = rbk(args, s.home)
        try:
            got_runs = json.loads(p.stdout)["runs"]
            got = [r["run"] for r in got_runs]
            shown_ok = all(r["status"] == f["status"] for r in got_runs) if "status" in f else True
        except (ValueError, KeyError, TypeError):
            got, shown_ok = None, False
        desc = " ".join(args[2:]) or "(no filter)"
        check(f"history {desc} --json: exactly the right runs, newest first", p.returncode == 0 and got == want and shown_ok,
              f"exit {p.returncode}: got {got}, want {want}" + ("" if shown_ok else f"; shown statuses: {p.stdout[:600]}"))
    # The text form lists the same runs.
    p = rbk(["history", "--actor", "rbk-alice"], s.home)
    ids = [int(line.split()[0]) for line in p.stdout.splitlines()[1:] if line.strip()]
    check("history --actor rbk-alice (text): the same runs as --json", p.returncode == 0 and ids == expect(actor="rbk-alice"),
          f"{ids} vs {expect(actor='rbk-alice')}: {p.stdout}")


def logs(stores):
    bad, n = [], 0
    for sname in ("crash-mark", "calls", "history"):
        s = stores[sname]
        db = open_chain(s.home)
        for r in runs_table(s.home):
            rows = db.execute("SELECT seq, run_id, at, actor, kind, data, hash FROM events WHERE run_id=? ORDER BY seq",
                              (r["id"],)).fetchall()
            p = rbk(["log", str(r["id"]), "--json"], s.home)
            n += 1
            lines = p.stdout.split("\n")
            if p.returncode != 0 or lines[-1] != "":
                bad.append(f"{sname} run {r['id']}: exit {p.returncode}, no final newline")
                continue
            try:
                objs = [json.loads(line) for line in lines[:-1]]
            except ValueError as e:
                bad.append(f"{sname} run {r['id']}: a line is not JSON ({e})")
                continue
            want = [dict(seq=q, run=ri, at=a.decode(), actor=ac.decode(), kind=k2, data=d2, hash=h.decode())
                    for q, ri, a, ac, k, d, h in rows for k2, d2 in unbatch(k, d)]
            got = [{k: o.get(k) for k in ("seq", "run", "at", "actor", "kind", "data", "hash")} if isinstance(o, dict) else o
                   for o in objs]
            if got != want:
                diff = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
                bad.append(f"{sname} run {r['id']}: {len(got)} objects vs {len(want)} events; first difference at #{diff}: "
                           f"{got[diff] if diff < len(got) else None} vs {want[diff] if diff < len(want) else None}")
        db.close()
    check(f"log --json on {n} runs: JSON Lines, one object per event in seq order (seq, run, at, actor, kind, data, "
          "hash as stored)", not bad, "; ".join(bad[:4]))


PHASES = []


def phase(name, t=[time.time()]):
    now = time.time()
    PHASES.append(f"{name} {now - t[0]:.1f}s")
    t[0] = now


def main():
    t0 = time.time()
    stores = build_all()
    phase('build')
    fp = clean_stores(stores)
    lab = Lab(stores)
    bad = []
    for name in lab.templates:  # the triggers dropped, nothing else changed
        home, db = lab.copy(name)
        db.close()
        rc, text = verify(home)
        if rc != 0:
            bad.append(f"{name}: {text}")
    check("no false positive on copies without the append-only triggers", not bad, "; ".join(bad))
    ntargeted = targeted(lab, "crash-mark") + targeted(lab, "calls")
    phase('targeted')
    total, detected, right = random_loop(lab, stores)
    phase('random')
    sealed_home = seals(lab, "history")
    phase('seals')
    replays(stores)
    phase('replay')
    bundles(stores, sealed_home)
    phase('bundles')
    reports(stores)
    phase('reports')
    history(stores["history"])
    logs(stores)
    phase('history+logs')
    check("no sanitizer report from any rbk command", not sanitizer, "; ".join(sanitizer[:3]))
    out(f"# audit: {len(stores)} clean stores, {fp + len(bad)} false positives; {ntargeted} targeted tamperings; "
        f"{total} random tamperings, {detected} detected, {right} named the right event; seed {SEED}; "
        f"{time.time() - t0:.1f}s ({', '.join(PHASES)})")


if __name__ == "__main__":
    try:
        main()
    except Exception:  # an ok/FAIL line, so tests/run counts it whatever else failed
        import traceback
        fail("audit.py stopped early", traceback.format_exc()[-1200:])
        sys.exit(1)
