#!/usr/bin/env python3
"""Fault injection over real runs (tests/scripts/faults.sh calls this).

For a runbook of ledger steps (retries, a rollback-free path), with the
store's I/O failing at every Nth operation (RBK_FAULT_IO=N), the disk
filling up from the Nth write (N:full), a power loss at every Nth sync
(N:powerloss: unsynced writes dropped) and the Nth allocation failing
(RBK_FAULT_ALLOC=N), each run must: end with a documented exit code and no
crash or sanitizer report; say what went wrong; leave the store intact
(PRAGMA integrity_check, rbk verify); and, resumed without the fault, end
as the run without faults ends, having run no non-idempotent step twice.
After a power loss, every action that ran has its step_started in the store
(no acknowledged checkpoint lost).

RBK_FAULT_IO is a fault of SQLite's files (a VFS shim): ioerr, full and
powerloss run on SQLite only. In tests/run's PostgreSQL pass (RBK_STORE a
PostgreSQL URI) the allocation failures run, each on a store of its own (a
schema, tests/lib/storedb.py), checked with rbk verify.
"""
import json, os, shutil, sqlite3, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.environ["RBK_ROOT"], "tests/lib"))
import storedb  # noqa: E402

RBK, ROOT = os.environ["RBK"], os.environ["RBK_ROOT"]
PLUGINS = f"{ROOT}/build/plugins:{ROOT}/build/test-plugins"
fails = []
counts = {}

RUNBOOK = """rbk: 1
name: faults
params:
  ledger: {type: string}
start: a
states:
  a:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: a}
    next: b
  b:
    do: testkit.ledger_idem
    with: {file: "{{ params.ledger }}", label: b}
    retry: {attempts: 2, delay: 1ms}
    next: c
  c:
    next:
      - if: steps.b.status == 'ok'
        to: d
      - to: bad
  d:
    do: testkit.ledger
    with: {file: "{{ params.ledger }}", label: d}
    set: {done: true}
    next: done
  done: {end: success}
  bad: {end: failure}
"""


STORE = {}  # home -> its PostgreSQL store (a schema's URL)


def rbk(home, *args, env_extra=None):
    env = dict(os.environ, RBK_HOME=home, RBK_PLUGIN_PATH=PLUGINS)
    if home in STORE:
        env["RBK_STORE"] = STORE[home]
    env.pop("RBK_FAULT_IO", None)
    env.pop("RBK_FAULT_ALLOC", None)
    env.update(env_extra or {})
    return subprocess.run([RBK, *args], capture_output=True, text=True, env=env, timeout=60)


def check(kind, n, tmp, first):
    """One faulty run, then the checks; returns False once the fault no longer bites."""
    home, ledger = f"{tmp}/home", f"{tmp}/ledger"
    rb = f"{tmp}/faults.yaml"
    p = first(home, rb, ledger)
    where = f"{kind} {n}"
    bitten = p.returncode != 0
    if p.returncode < 0 and not (kind == "powerloss" and p.returncode == -9):
        fails.append(f"{where}: killed by signal {-p.returncode}: {p.stderr[-300:]}")
    if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        fails.append(f"{where}: sanitizer: {p.stderr[-500:]}")
    if p.returncode not in (0, 1, 2, 3, 4, 5, 6, -9):
        fails.append(f"{where}: undocumented exit {p.returncode}")
    if p.returncode in (1, 5) and "rbk: error:" not in p.stderr and "failed" not in p.stdout:
        fails.append(f"{where}: exit {p.returncode} without a message")
    if kind == "powerloss":
        # After the power cut the shared-memory index is gone too.
        for f in ("rbk.db-shm",):
            try:
                os.unlink(f"{home}/{f}")
            except FileNotFoundError:
                pass
    db = f"{home}/rbk.db"
    con = storedb.connect(home, missing_ok=True, store=STORE.get(home))
    if con is not None:
        if home not in STORE:
            ok = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                fails.append(f"{where}: integrity_check: {ok}")
        v = rbk(home, "verify")
        if v.returncode != 0:
            fails.append(f"{where}: verify: {v.stdout}{v.stderr}")
        started = {json.loads(d)["key"] for (d,) in con.execute("SELECT data FROM events WHERE kind='step_started'")}
        runs = con.execute("SELECT id FROM runs").fetchall()
        if kind == "powerloss" and os.path.exists(ledger):
            for line in open(ledger):
                key = line.split()[0]
                if key not in started:
                    fails.append(f"{where}: action {key} ran but its step_started was lost")
        # Resume without the fault: the same end as a clean run.
        for (rid,) in runs:
            for _ in range(4):
                st = rbk(home, "show", str(rid), "--json")
                status = json.loads(st.stdout)["status"] if st.returncode == 0 else "?"
                if status in ("succeeded", "failed", "rolled_back", "aborted"):
                    break
                r = rbk(home, "resume", str(rid))
                if r.returncode == 4 and "needs attention" in (r.stdout + r.stderr):
                    keys = [l.split()[0] for l in open(ledger)] if os.path.exists(ledger) else []
                    mark = "success" if any(k.startswith(f"{rid}:") for k in keys[-1:]) else "failure"
                    rbk(home, "resume", str(rid), "--retry-step" if mark == "failure" else "--mark-step", *([] if mark == "failure" else ["success"]))
            if status != "succeeded":
                fails.append(f"{where}: run {rid} ended {status} after resume, a clean run succeeds")
        if os.path.exists(ledger):
            keys = [l.split()[0] for l in open(ledger)]
            nonidem = [k for k in keys if k.split(":")[1] in ("a", "d")]
            if len(nonidem) != len(set(nonidem)):
                fails.append(f"{where}: a non-idempotent step ran twice: {keys}")
    counts[kind] = counts.get(kind, 0) + 1
    return bitten


def run_case(kind, n):
    tmp = tempfile.mkdtemp(prefix=f"rbk-fault-{kind}-{n}-")
    store = storedb.fresh_store()
    if store:
        STORE[f"{tmp}/home"] = store
    try:
        def first(home, rb, ledger):
            open(rb, "w").write(RUNBOOK)
            rbk(home, "status")  # the store exists before the fault: faults hit the run
            env = {"RBK_FAULT_ALLOC": str(n)} if kind == "alloc" else {
                "RBK_FAULT_IO": f"{n}" if kind == "ioerr" else f"{n}:{kind}"}
            return rbk(home, "run", rb, "-p", f"ledger={ledger}", env_extra=env)
        return check(kind, n, tmp, first)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        storedb.drop_store(STORE.pop(f"{tmp}/home", None))


def main():
    quick = "--quick" in sys.argv
    kinds = (("ioerr", 400, 1 if not quick else 4), ("full", 400, 1 if not quick else 4),
             ("powerloss", 100, 1 if not quick else 2), ("alloc", 20000, 37 if not quick else 151))
    if storedb.is_pg():
        kinds = kinds[3:]  # RBK_FAULT_IO is SQLite's
    for kind, stop, step in kinds:
        misses = 0
        for n in range(1, stop, step):
            if not run_case(kind, n):
                misses += 1
                if misses >= 3:  # the fault point is past the run's end
                    break
            else:
                misses = 0
    name = "faults"
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    if fails:
        print(f"FAIL {name}: {len(fails)} problem(s) in {total} faulty runs ({detail}): " + " || ".join(fails[:8]))
    else:
        print(f"ok {name}: {total} faulty runs ({detail}): no crash, store intact, every run resumed to its end, "
              "no non-idempotent step twice, no acknowledged checkpoint lost")


main()
