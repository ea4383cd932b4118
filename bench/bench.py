#!/usr/bin/env python3
"""make bench: rbk measured side by side with its peers, in one run.

Prints a table and writes bench/results.md (with the machine's description).
Every figure is measured and reported, never asserted: this script exits 0
whatever the figures are, and a peer that is missing is reported as
"peer unavailable". The targets are rbk's performance goals, stated in
each row's "goal" column and in bench/results.md's header (docs/performance.md
says why they are what they are and where the time goes): a shell step
within 1.5x of bash and at least 100x cheaper than an ansible task; from
`rbk run` to its first action within 3x a bare launch of that action; pure
states twice as fast as aws-local-stepfunctions in memory, with rbk's whole
process and durable record counted; history and log interactive on a
1M-event store, verify at 200k events/s or more, a run's memory under 16
MiB; on PostgreSQL, throughput that grows with agents, reported beside
SQLite.

Environment: RBK (default build/rbk), ASL_PREFIX (the npm prefix of
aws-local-stepfunctions, default ~/.cache/rbk-bench), BENCH_CACHE (default
bench/.cache), QUICK=1 (fewer repetitions, for trying the script).
"""
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILT_RBK = os.path.abspath(os.environ.get("RBK", os.path.join(ROOT, "build", "rbk")))
BUILT_PLUGINS = os.path.join(ROOT, "build", "plugins")
RBK, PLUGINS = BUILT_RBK, BUILT_PLUGINS  # replaced by a snapshot (see snapshot())
CACHE = os.path.abspath(os.environ.get("BENCH_CACHE", os.path.join(BENCH, ".cache")))
WORK = os.path.join(CACHE, "work")
ASL_PREFIX = os.environ.get("ASL_PREFIX", os.path.join(os.path.expanduser("~"), ".cache", "rbk-bench"))
QUICK = os.environ.get("QUICK") == "1"
STORE_EVENTS = 1_000_000
BIG_STEPS = 33_333  # the run `rbk log` reads: 3 + 3 * 33,333 = 100,002 events
STEPS = 50
HYPERFINE = shutil.which("hyperfine")
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

rows = []    # (measure, rbk, peer, ratio, goal, verdict)
raw = []     # lines of raw figures
notes = []   # anything that went wrong, worth knowing
floors = []  # for a goal missed: the measured floor that stops it


def log(msg):
    print(f"bench: {msg}", flush=True)


def env_for(home, **extra):
    e = dict(os.environ)
    e.update(RBK_HOME=home, RBK_PLUGIN_PATH=PLUGINS, NO_COLOR="1")
    e.update(extra)
    return e


def fresh_home(name):
    home = os.path.join(WORK, "homes", name)
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home)
    return home


# ---------------------------------------------------------------- timing

def timeit(name, argv, env, runs, warmup=0, cwd=None):
    """Times a command `runs` times. Returns {median, mean, min, max, cpu, n,
    fails} in seconds (cpu: mean user+sys), or None when it cannot run."""
    if HYPERFINE:
        out = os.path.join(WORK, "hf-" + re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".json")
        cmd = [HYPERFINE, "-N", "-i", "--style", "none", "-w", str(warmup), "-r", str(runs),
               "--export-json", out, shlex.join(argv)]
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            r = json.load(open(out))["results"][0]
        except Exception:
            notes.append(f"{name}: hyperfine failed: {p.stderr.strip()[-300:]}")
            return None
        fails = sum(1 for c in r.get("exit_codes", []) if c != 0)
        return {"median": r["median"], "mean": r["mean"], "min": r["min"], "max": r["max"],
                "cpu": r["user"] + r["system"], "n": len(r["times"]), "fails": fails}
    times, cpus, fails = [], [], 0
    for i in range(warmup + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        c = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        t = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i >= warmup:
            times.append(t)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            fails += c != 0
    return {"median": statistics.median(times), "mean": statistics.mean(times), "min": min(times),
            "max": max(times), "cpu": statistics.mean(cpus), "n": len(times), "fails": fails}


def peak_rss_kib(argv, env, cwd=None):
    if not GNU_TIME:
        return None
    p = subprocess.run([GNU_TIME, "-f", "RSS %M", "--"] + argv, env=env, cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.findall(r"^RSS (\d+)$", p.stderr, re.M)
    return int(m[-1]) if m else None


def ms(s):
    if s is None:
        return "n/a"
    v = s * 1000
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 1 else f"{v:.2f} ms"


def fig(t):
    """A timing as 'median (cpu X, n=N)'."""
    if not t:
        return "n/a"
    s = f"median {ms(t['median'])} (min {ms(t['min'])}, max {ms(t['max'])}, cpu {ms(t['cpu'])}, n={t['n']})"
    if t["fails"]:
        s += f" [{t['fails']} runs exited non-zero]"
    return s


def verdict(ok):
    return "met" if ok else "MISSED"


# ---------------------------------------------------------------- peers

def peer_versions():
    v = {}
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[0]
        except Exception:
            return None
    v["bash"] = first_line(["bash", "--version"])
    v["ansible"] = first_line(["ansible-playbook", "--version"]) if shutil.which("ansible-playbook") else None
    v["node"] = first_line(["node", "--version"]) if shutil.which("node") else None
    try:
        v["aws-local-stepfunctions"] = json.load(open(os.path.join(
            ASL_PREFIX, "node_modules", "aws-local-stepfunctions", "package.json")))["version"]
    except Exception:
        v["aws-local-stepfunctions"] = None
    v["hyperfine"] = first_line([HYPERFINE, "--version"]) if HYPERFINE else None
    v["sqlite3 (python)"] = sqlite3.sqlite_version
    return v


# ---------------------------------------------------------------- machine

def machine():
    def read(p):
        try:
            return open(p).read()
        except OSError:
            return ""
    cpu = re.search(r"^model name\s*:\s*(.*)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    cc = subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True, text=True).stdout.splitlines()
    disk = "unknown"
    try:
        src, fstype = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", CACHE],
                                     capture_output=True, text=True).stdout.split()[:2]
        dev = os.path.basename(src)
        parent = subprocess.run(["lsblk", "-n", "-o", "PKNAME", src], capture_output=True, text=True).stdout.strip()
        blk = parent or dev
        rota = read(f"/sys/block/{blk}/queue/rotational").strip()
        model = read(f"/sys/block/{blk}/device/model").strip()
        kind = {"0": "non-rotational (SSD)", "1": "rotational (HDD)"}.get(rota, "unknown type")
        if blk.startswith(("vd", "xvd")):  # a virtual disk: its rotational flag says nothing of the medium
            kind = f"virtual block device {blk}, rotational flag {rota or '?'}"
        disk = f"{fstype} on {src} ({kind}{', ' + model if model else ''})"
    except Exception:
        pass
    load = read("/proc/loadavg").split()[:3]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "engine", "plugins"],
                               capture_output=True, text=True).stdout.strip()
        rev = head + (" + uncommitted changes to engine/ or plugins/" if dirty else "")
    except OSError:
        rev = "unknown"
    return {
        "CPU": cpu.group(1).strip() if cpu else platform.processor(),
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem.group(1)) / 1048576:.1f} GiB" if mem else "unknown",
        "kernel": platform.release(),
        "disk (store)": disk,
        "compiler": cc[0] if cc else "unknown",
        "rbk": f"{rev}, built with CFLAGS -O2 -g (make all)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at start": " ".join(load),
    }


# ---------------------------------------------------------------- generators

def write_shell_defs():
    """The 50-step runbook, its bash twin, its ansible twin, and empty baselines."""
    d = os.path.join(WORK, "defs")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "steps50.yaml"), "w") as f:
        f.write(f"rbk: 1\nname: bench-steps{STEPS}\nstart: s1\nstates:\n")
        for i in range(1, STEPS + 1):
            nxt = f"s{i + 1}" if i < STEPS else "done"
            f.write(f"  s{i}:\n    do: shell.exec\n    with: {{argv: [/bin/true]}}\n    next: {nxt}\n")
        f.write("  done: {end: success}\n")
    with open(os.path.join(d, "steps0.yaml"), "w") as f:
        f.write("rbk: 1\nname: bench-steps0\nstart: done\nstates:\n  done: {end: success}\n")
    with open(os.path.join(d, "steps50.sh"), "w") as f:
        f.write("set -e\n" + "/bin/true\n" * STEPS)
    with open(os.path.join(d, "steps0.sh"), "w") as f:
        f.write("set -e\n")
    play = "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:"
    with open(os.path.join(d, "steps50.yml"), "w") as f:
        f.write(play + "\n")
        for i in range(1, STEPS + 1):
            f.write(f"    - name: s{i}\n      command: /bin/true\n")
    with open(os.path.join(d, "steps0.yml"), "w") as f:
        f.write(play + " []\n")
    return d


# ---------------------------------------------------------------- benchmarks

def bench_shell(d):
    log(f"{STEPS} shell.exec /bin/true steps: rbk, bash, ansible-playbook")
    home = fresh_home("shell")
    e = env_for(home)
    n = 5 if QUICK else 20
    r50 = timeit("rbk steps50", [RBK, "run", os.path.join(d, "steps50.yaml")], e, n, 3)
    r0 = timeit("rbk steps0", [RBK, "run", os.path.join(d, "steps0.yaml")], e, n, 3)
    b50 = timeit("bash steps50", ["bash", os.path.join(d, "steps50.sh")], e, n, 3)
    b0 = timeit("bash steps0", ["bash", os.path.join(d, "steps0.sh")], e, n, 3)
    raw.append(f"rbk run, {STEPS} steps: {fig(r50)}")
    raw.append(f"rbk run, no step (start is the end): {fig(r0)}")
    raw.append(f"bash, {STEPS} commands: {fig(b50)}")
    raw.append(f"bash, empty script: {fig(b0)}")
    per = lambda a, b, k: None if not (a and b) else max(a[k] - b[k], 1e-9) / STEPS
    rs, bs = per(r50, r0, "median"), per(b50, b0, "median")
    rc, bc = per(r50, r0, "cpu"), per(b50, b0, "cpu")
    if rs and bs:
        ratio = rs / bs
        rows.append((f"shell step (/bin/true), per step beyond an empty run, vs bash",
                     f"{ms(rs)} (cpu {ms(rc)})", f"bash {ms(bs)} (cpu {ms(bc)})",
                     f"rbk/bash {ratio:.2f} (cpu {rc / bc:.2f})", "<= 1.5x bash", verdict(ratio <= 1.5)))
        rows.append((f"whole {STEPS}-step run vs bash script",
                     ms(r50["median"]), f"bash {ms(b50['median'])}",
                     f"rbk/bash {r50['median'] / b50['median']:.2f}", "(context)", ""))
    else:
        rows.append(("shell step vs bash", "n/a", "n/a", "", "<= 1.5x bash", "not measured"))

    if not shutil.which("ansible-playbook"):
        rows.append(("shell step vs ansible task", ms(rs), "peer unavailable", "", ">= 100x less", "not measured"))
        return
    ae = dict(e, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
              ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_RETRY_FILES_ENABLED="False")
    inv = ["-i", "localhost,"]
    a50 = timeit("ansible steps50", ["ansible-playbook"] + inv + [os.path.join(d, "steps50.yml")], ae, 1 if QUICK else 2)
    a0 = timeit("ansible steps0", ["ansible-playbook"] + inv + [os.path.join(d, "steps0.yml")], ae, 1 if QUICK else 2)
    raw.append(f"ansible-playbook, {STEPS} command tasks: {fig(a50)}")
    raw.append(f"ansible-playbook, no task: {fig(a0)}")
    if a50 and a0 and not a50["fails"] and rs:
        at = per(a50, a0, "median")
        ratio = at / rs
        rows.append(("shell step vs ansible task (command, local), per step beyond an empty run",
                     ms(rs), f"ansible {ms(at)}", f"ansible/rbk {ratio:.0f}",
                     ">= 100x less than ansible", verdict(ratio >= 100)))
    else:
        rows.append(("shell step vs ansible task", ms(rs), "peer failed", "", ">= 100x less", "not measured"))


def bench_pure():
    log("10,000 pure states: rbk decision/set vs aws-local-stepfunctions Pass/Choice")
    home = fresh_home("pure")
    e = env_for(home)
    rb = os.path.join(BENCH, "runbooks", "loop.yaml")
    n = 3 if QUICK else 10
    r = timeit("rbk loop", [RBK, "run", rb], e, n, 1)
    raw.append(f"rbk run, 10,000 decision states (5,000 x set + guard), whole process with its store: {fig(r)}")
    # check: the machine really ran 10,000 states
    try:
        con = sqlite3.connect(os.path.join(home, "rbk.db"))
        last_run, stored = con.execute("SELECT max(run_id), count(*) FROM events WHERE run_id = (SELECT max(id) FROM runs)").fetchone()
        con.close()
        logged = subprocess.run([RBK, "log", str(last_run), "--json"], env=e, capture_output=True, text=True, timeout=120)
        t = sum(1 for line in logged.stdout.splitlines() if json.loads(line)["kind"] == "transition")
        raw.append(f"rbk: {t} transitions recorded in the last loop run, stored in {stored} rows (pure events are "
                   "batched: docs/audit.md)")
    except Exception as ex:
        notes.append(f"pure states: could not count transitions: {ex}")
    asl = os.path.join(BENCH, "peers", "loop.asl.json")
    drv = os.path.join(BENCH, "peers", "asl-run.mjs")
    ok = shutil.which("node") and os.path.isdir(os.path.join(ASL_PREFIX, "node_modules", "aws-local-stepfunctions"))
    if not ok:
        rows.append(("10,000 pure states", ms(r and r["median"]), "peer unavailable", "", ">= 2x faster", "not measured"))
        return
    ne = dict(e, ASL_PREFIX=ASL_PREFIX)
    p = subprocess.run(["node", drv, asl, "3" if QUICK else "5", "1"], env=ne, capture_output=True, text=True, timeout=300)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
        inproc = statistics.median(res["ms"]) / 1000
        raw.append(f"aws-local-stepfunctions, the same machine (Pass + Choice), in memory, run() alone after a warm-up: "
                   f"median {ms(inproc)} of {[round(x) for x in res['ms']]} ms; output {json.dumps(res['output'])}")
    except Exception:
        notes.append(f"aws-local-stepfunctions failed: {p.stderr.strip()[-300:]}")
        rows.append(("10,000 pure states", ms(r and r["median"]), "peer failed", "", ">= 2x faster", "not measured"))
        return
    whole = timeit("asl loop whole", ["node", drv, asl, "1", "0"], ne, 2 if QUICK else 3)
    raw.append(f"aws-local-stepfunctions, whole node process, one run: {fig(whole)}")
    if r:
        ratio = inproc / r["median"]
        rows.append(("10,000 pure states (decision + set, guards)",
                     f"{ms(r['median'])} ({10000 / r['median']:,.0f} states/s, whole process, durable)",
                     f"aws-local-stepfunctions {ms(inproc)} in memory ({10000 / inproc:,.0f} states/s); "
                     f"{ms(whole and whole['median'])} whole process",
                     f"peer/rbk time {ratio:.2f} (whole processes: {(whole['median'] / r['median']) if whole else 0:.1f})",
                     ">= 2x faster", verdict(ratio >= 2)))


def first_stamp(home, run_id, state):
    con = sqlite3.connect(os.path.join(home, "rbk.db"))
    try:
        for (data,) in con.execute("SELECT data FROM events WHERE run_id = ? AND kind = 'step_finished' ORDER BY seq DESC", (run_id,)):
            d = json.loads(data)
            if d.get("state") == state:
                return int(d["result"]["stdout"].strip())
    finally:
        con.close()
    return None


def bench_first_action():
    log("time from `rbk run` to its first action")
    home = fresh_home("first")
    e = env_for(home)
    rb = os.path.join(BENCH, "runbooks", "first-action.yaml")
    subprocess.run([RBK, "run", rb], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the store exists
    n = 5 if QUICK else 20
    lat, base = [], []
    for _ in range(n):
        t0 = time.time_ns()
        p = subprocess.run([RBK, "run", rb, "--json"], env=e, capture_output=True, text=True)
        try:
            run_id = json.loads(p.stdout)["run"]
            s = first_stamp(home, run_id, "stamp")
            lat.append((s - t0) / 1e9)
        except Exception:
            notes.append(f"first action: run failed: {p.stdout.strip()} {p.stderr.strip()[-200:]}")
        t0 = time.time_ns()
        q = subprocess.run(["/bin/date", "+%s%N"], capture_output=True, text=True)
        base.append((int(q.stdout) - t0) / 1e9)
    if not lat:
        rows.append(("rbk run -> first action (10 states)", "n/a", "", "", "<= 3x a bare launch", "not measured"))
        return
    m, b = statistics.median(lat), statistics.median(base)
    raw.append(f"launch -> first action's timestamp, rbk run of 10 states: median {ms(m)} "
               f"(min {ms(min(lat))}, max {ms(max(lat))}, n={len(lat)})")
    raw.append(f"launch -> timestamp of the same /bin/date started directly: median {ms(b)} "
               f"(min {ms(min(base))}, max {ms(max(base))}, n={len(base)})")
    rows.append(("rbk run -> first action starts (10-state runbook, existing store)",
                 f"{ms(m)} (min {ms(min(lat))}, max {ms(max(lat))})",
                 f"the action launched directly {ms(b)} (min {ms(min(base))}, max {ms(max(base))})",
                 f"rbk/direct {m / b:.1f}", "<= 3x a bare launch", verdict(m <= 3 * b)))
    # Where the time goes: each command below does what the one before did,
    # and more; the differences are the parts' costs.
    n = 5 if QUICK else 20
    parts = [("exec of a program (/bin/true)", ["/bin/true"]),
             ("exec of rbk and its libraries (rbk --version)", [RBK, "--version"]),
             ("+ the runbook read and checked, its plugin loaded and tried in a child (rbk validate)", [RBK, "validate", "-q", rb]),
             ("+ store, run record, plugin, worker, first program (rbk run -> first action)", None)]
    prev, lines = 0.0, []
    for label, argv in parts:
        r = timeit("start " + label, argv, e, n, 3) if argv else {"median": m - b}
        if not r:
            break
        t = r["median"]
        lines.append(f"{label}: {ms(t)} (+{ms(max(t - prev, 0))})")
        prev = t
    raw.append("start-up, where the time goes (medians; each line adds to the one before): " + "; ".join(lines))
    if m > 3 * b and len(lines) == len(parts):
        floors.append(
            f"First action within 3x a bare launch: {3 * b * 1000:.1f} ms here. The exec of rbk with its five "
            "shared libraries alone (`rbk --version`, above) takes most of that, before any runbook is read; "
            "reading and checking the runbook and loading its plugin (with the trial call of its init in a "
            "child, so a crashing plugin cannot take rbk down) comes next; then the run's two durable commits "
            "(its creation, atomic with its lock and lease, and the first step's start) and the worker. What "
            "would cut it is static linking (about a third of the libraries' share; but a security fix to "
            "OpenSSL or SQLite would then need a new rbk) and a single commit (a run announced and then erased "
            "by a crash). rbk keeps both guarantees: docs/performance.md, \"Start-up\".")


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                kids = open(f"/proc/{p}/task/{t}/children").read().split()
                for k in kids:
                    out.append(int(k))
                    todo.append(int(k))
        except OSError:
            pass
    return out


def bench_resume():
    log("resume after SIGKILL")
    home = fresh_home("resume")
    e = env_for(home)
    rb = os.path.join(BENCH, "runbooks", "resume.yaml")
    marker = os.path.join(WORK, "resume.marker")
    db = os.path.join(home, "rbk.db")
    n = 3 if QUICK else 8
    to_first, to_end = [], []
    for _ in range(n):
        if os.path.exists(marker):
            os.unlink(marker)
        p = subprocess.Popen([RBK, "run", rb, "-p", f"marker={marker}"], env=e,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_id, deadline = None, time.time() + 30
        while time.time() < deadline and p.poll() is None:
            try:
                con = sqlite3.connect(db, timeout=1)
                row = con.execute("SELECT run_id FROM events WHERE kind = 'step_started' AND data LIKE '%\"state\":\"block\"%' "
                                  "AND run_id = (SELECT max(id) FROM runs)").fetchone()
                con.close()
            except sqlite3.Error:
                row = None
            if row and any(_is_sleep(k) for k in descendants(p.pid)):
                run_id = row[0]
                break
            time.sleep(0.005)
        kids = descendants(p.pid)
        p.send_signal(signal.SIGKILL)
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()
        if run_id is None:
            notes.append("resume: the run never reached its blocking step")
            continue
        open(marker, "w").close()
        t0 = time.time_ns()
        q = subprocess.run([RBK, "resume", str(run_id)], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t1 = time.time_ns()
        if q.returncode != 0:
            notes.append(f"resume of run {run_id} exited {q.returncode}: {q.stderr.strip()[-200:]}")
            continue
        s = first_stamp(home, run_id, "block")
        to_end.append((t1 - t0) / 1e9)
        if s:
            to_first.append((s - t0) / 1e9)
    if not to_end:
        rows.append(("resume after SIGKILL", "n/a", "", "", "(no goal)", "not measured"))
        return
    raw.append(f"rbk resume after SIGKILL mid-run (1 in-flight idempotent step re-run + 10 steps): to completion "
               f"median {ms(statistics.median(to_end))} (min {ms(min(to_end))}, max {ms(max(to_end))}, n={len(to_end)}); "
               f"to its first action median {ms(statistics.median(to_first) if to_first else None)}")
    rows.append(("rbk resume after SIGKILL: to first action / to completion (11 steps left)",
                 f"{ms(statistics.median(to_first) if to_first else None)} / {ms(statistics.median(to_end))}", "", "",
                 "(no goal; cf. first action)", ""))


def _is_sleep(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip() == "sleep"
    except OSError:
        return False


def store_cache():
    gen = os.path.join(BENCH, "gen_store.py")
    key = hashlib.sha256()
    for f in (gen, os.path.join(ROOT, "schemas", "store.sql")):
        key.update(open(f, "rb").read())
    key.update(f"{STORE_EVENTS}:{BIG_STEPS}".encode())
    k = key.hexdigest()[:16]
    home = os.path.join(CACHE, f"store-{k}")
    info = os.path.join(home, "info.json")
    if os.path.exists(info):
        log(f"store of {STORE_EVENTS:,} events: cached in {home}")
        return home, json.load(open(info))
    for old in os.listdir(CACHE):
        if old.startswith("store-"):
            shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
    log(f"store of {STORE_EVENTS:,} events: generating once in {home}")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, gen, "--rbk", RBK, "--home", home, "--events", str(STORE_EVENTS),
                        "--big-steps", str(BIG_STEPS)], capture_output=True, text=True)
    if p.returncode != 0:
        notes.append(f"store generator failed: {p.stderr.strip()[-300:]}")
        return None, None
    d = json.loads(p.stdout.strip().splitlines()[-1])
    d["generated_in_s"] = round(time.perf_counter() - t0, 1)
    json.dump(d, open(info, "w"))
    return home, d


def bench_store():
    home, info = store_cache()
    if not home:
        rows.append(("history/log/verify on 1M events", "n/a", "", "", "", "not measured"))
        return
    log("rbk history, log, verify on the store")
    e = env_for(home)
    raw.append(f"store: {info['events']:,} events in {info['runs']:,} runs, {os.path.getsize(os.path.join(home, 'rbk.db')) / 1048576:.0f} MiB "
               f"(generated in {info.get('generated_in_s', '?')} s by bench/gen_store.py, cached)")
    n = 3 if QUICK else 10
    h = timeit("history", [RBK, "history", "--limit", "50"], e, n, 2)
    lb = timeit("log big", [RBK, "log", str(info["big_run"])], e, 2 if QUICK else 5, 1)
    ls = timeit("log small", [RBK, "log", str(info["small_run"])], e, n, 2)
    v = timeit("verify", [RBK, "verify"], e, 2 if QUICK else 3, 1)
    raw.append(f"rbk history --limit 50: {fig(h)}")
    raw.append(f"rbk log of run {info['big_run']} ({info['big_run_events']:,} events): {fig(lb)}")
    raw.append(f"rbk log of run {info['small_run']} (99 events): {fig(ls)}")
    raw.append(f"rbk verify ({info['events']:,} events): {fig(v)}")
    if h:
        rows.append(("rbk history --limit 50 (1M-event store)", ms(h["median"]), "", "", "< 100 ms", verdict(h["median"] < 0.1)))
    if ls:
        rows.append(("rbk log of a 99-event run (1M-event store)", ms(ls["median"]), "", "", "interactive (< 100 ms)",
                     verdict(ls["median"] < 0.1)))
    if lb:
        rows.append((f"rbk log of a {info['big_run_events']:,}-event run", f"{ms(lb['median'])} ({info['big_run_events'] / lb['median']:,.0f} events/s)",
                     "", "", "(reported)", ""))
    if v:
        rate = info["events"] / v["median"]
        rows.append(("rbk verify (1M events)", f"{ms(v['median'])} = {rate:,.0f} events/s", "", "", ">= 200k events/s",
                     verdict(rate >= 200_000) + ("" if not v["fails"] else " (verify exited non-zero)")))
    return home, info


def bench_memory(d, store):
    log("peak memory (GNU time, max RSS)")
    if not GNU_TIME:
        rows.append(("peak memory of a run", "n/a", "GNU time unavailable", "", "< 16 MiB", "not measured"))
        return
    home = fresh_home("memory")
    e = env_for(home)
    runs = {
        f"{STEPS}-step shell run": [RBK, "run", os.path.join(d, "steps50.yaml")],
        "10,000-state loop run": [RBK, "run", os.path.join(BENCH, "runbooks", "loop.yaml")],
        "10-state run": [RBK, "run", os.path.join(BENCH, "runbooks", "first-action.yaml")],
    }
    got = {}
    for name, argv in runs.items():
        got[name] = peak_rss_kib(argv, e)
        raw.append(f"max RSS, rbk run, {name}: {got[name]} KiB")
    if store and store[0]:
        se = env_for(store[0])
        for name, argv in {"rbk verify (1M events)": [RBK, "verify"],
                           f"rbk log ({store[1]['big_run_events']:,} events)": [RBK, "log", str(store[1]["big_run"])]}.items():
            raw.append(f"max RSS, {name}: {peak_rss_kib(argv, se)} KiB")
    vals = [v for v in got.values() if v]
    if vals:
        worst = max(vals)
        which = [k for k, v in got.items() if v == worst][0]
        rows.append(("peak memory of a run (max RSS)", f"{worst / 1024:.1f} MiB ({which}); "
                     + ", ".join(f"{v / 1024:.1f}" for v in got.values() if v) + " MiB",
                     "", "", "< 16 MiB", verdict(worst < 16 * 1024)))


def bench_soak():
    ticks = "120" if QUICK else "360"
    log(f"scheduler soak, {ticks} simulated minutes (make soak runs 1440)")
    try:
        p = subprocess.run(["bash", os.path.join(ROOT, "tests", "soak", "soak.sh")], env=dict(os.environ, TICKS=ticks, RBK=RBK, RBK_PLUGIN_PATH=PLUGINS),
                           capture_output=True, text=True, timeout=180)
        out = p.stdout.strip().splitlines()
    except subprocess.TimeoutExpired:
        out = []
    mem = [l for l in out if l.startswith("resident memory")]
    flat = [l for l in out if l.startswith("memory:")]
    for l in out:
        raw.append("soak: " + l)
    if mem and flat:
        m = re.search(r"first (\d+), last (\d+), max (\d+)", mem[0])
        rows.append((f"scheduler memory over a soak ({ticks} simulated minutes)",
                     f"RSS first {m.group(1)} KiB, last {m.group(2)} KiB, max {m.group(3)} KiB" if m else mem[0],
                     "", "", "flat", "met" if flat[0].endswith("flat") else "MISSED"))
    else:
        rows.append(("scheduler memory over a soak", "n/a", "", "", "flat", "not measured"))



# ---------------------------------------------------------------- scale-out

SCALE_RUNS = 24
SCALE_STEPS = 10


def start_cluster():
    """A throwaway PostgreSQL cluster (tests/pg/cluster.sh); (url, dir) or None."""
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "pg", "cluster.sh")], capture_output=True, text=True)
    if p.returncode != 0:
        notes.append(f"PostgreSQL: cluster.sh failed: {p.stderr.strip()[-300:]}")
        return None
    env = dict(re.findall(r"export (\w+)='([^']*)'", p.stdout))
    return env.get("RBK_TEST_PG"), env.get("RBK_TEST_PG_DIR")


def pg_schema(url, name):
    subprocess.run(["psql", "-X", "-q", url, "-c", f"drop schema if exists {name} cascade; create schema {name}"],
                   capture_output=True)
    return f"{url}&options=-csearch_path%3D{name}"


def throughput(store_env, agents, tag):
    """SCALE_RUNS runs of SCALE_STEPS /bin/true steps queued, then executed
    by `agents` agents: steps per second from the first agent's start to
    the last run's end."""
    d = os.path.join(WORK, "defs")
    rb = os.path.join(d, "scale.yaml")
    with open(rb, "w") as f:
        f.write(f"rbk: 1\nname: bench-scale\nqueue: bench\nstart: s1\nstates:\n")
        for i in range(1, SCALE_STEPS + 1):
            nxt = f"s{i + 1}" if i < SCALE_STEPS else "done"
            f.write(f"  s{i}:\n    do: shell.exec\n    with: {{argv: [/bin/true]}}\n    next: {nxt}\n")
        f.write("  done: {end: success}\n")
    homes = [fresh_home(f"scale-{tag}-{agents}-{i}") for i in range(agents)]
    e0 = env_for(homes[0], **store_env)
    for _ in range(SCALE_RUNS):
        subprocess.run([RBK, "run", rb, "--detach"], env=e0, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([RBK, "agent", "--queue", "bench", "--poll", "50ms", "--concurrency", "2"],
                              env=env_for(h, **store_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for h in homes]
    done = 0
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        out = subprocess.run([RBK, "history", "--json", "--limit", str(SCALE_RUNS + 5)], env=e0,
                             capture_output=True, text=True).stdout
        try:
            runs = json.loads(out)
            runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
            done = sum(1 for r in runs if r.get("status") == "succeeded")
        except ValueError:
            done = 0
        if done >= SCALE_RUNS:
            break
        time.sleep(0.05)
    t = time.perf_counter() - t0
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    if done < SCALE_RUNS:
        notes.append(f"scale {tag} x{agents}: only {done} of {SCALE_RUNS} runs succeeded")
        return None
    return SCALE_RUNS * SCALE_STEPS / t


def bench_scale():
    log(f"throughput: {SCALE_RUNS} runs of {SCALE_STEPS} shell steps, 1, 2 and 4 agents, PostgreSQL beside SQLite")
    cl = start_cluster()
    if not cl or not cl[0]:
        rows.append(("agents on PostgreSQL", "n/a", "", "", "(reported)", "not measured (no PostgreSQL server)"))
        return
    url, cdir = cl
    try:
        for n in (1, 2, 4):
            sq = throughput({"RBK_STORE": "sqlite:" + os.path.join(fresh_home(f"scale-sqlite-{n}"), "rbk.db")}, n, "sqlite")
            pg = throughput({"RBK_STORE": pg_schema(url, f"bench_{n}")}, n, "pg")
            raw.append(f"{n} agent(s): PostgreSQL {pg and f'{pg:.0f}'} steps/s, SQLite {sq and f'{sq:.0f}'} steps/s")
            rows.append((f"steps/s with {n} agent(s), 2 runs each at once, PostgreSQL",
                         "n/a" if pg is None else f"{pg:.0f} steps/s",
                         "n/a" if sq is None else f"SQLite {sq:.0f} steps/s",
                         "" if not (pg and sq) else f"pg/sqlite {pg / sq:.2f}", "(reported; grows with agents)", ""))
        home, info = store_cache()
        if home:
            # verify on PostgreSQL: the 1M-event store copied in (QUICK: a smaller one)
            dst = pg_schema(url, "bench_verify")
            src_home = home
            t0 = time.perf_counter()
            p = subprocess.run([RBK, "store", "copy", "--to", dst], env=env_for(src_home), capture_output=True, text=True)
            copy_s = time.perf_counter() - t0
            if p.returncode != 0:
                notes.append(f"store copy into PostgreSQL failed: {p.stderr.strip()[-300:]}")
            else:
                raw.append(f"rbk store copy of {info['events']:,} events into PostgreSQL: {copy_s:.0f} s")
                v = timeit("verify pg", [RBK, "verify"], env_for(src_home, RBK_STORE=dst), 1 if QUICK else 3, 1)
                vs = timeit("verify sqlite", [RBK, "verify"], env_for(src_home), 1 if QUICK else 3, 1)
                raw.append(f"rbk verify on PostgreSQL ({info['events']:,} events): {fig(v)}")
                if v and vs:
                    rate, rate_s = info["events"] / v["median"], info["events"] / vs["median"]
                    rows.append(("rbk verify (1M events), PostgreSQL", f"{rate:,.0f} events/s", f"SQLite {rate_s:,.0f} events/s",
                                 f"pg/sqlite {rate / rate_s:.2f}", ">= 200k events/s", verdict(rate >= 200_000)))
    finally:
        subprocess.run(["sh", os.path.join(ROOT, "tests", "pg", "cluster.sh"), "stop", cdir], capture_output=True)

# ---------------------------------------------------------------- report

def table():
    head = ("measure", "rbk", "peer", "ratio", "goal", "verdict")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def snapshot():
    """Copies build/rbk and its plugins aside, so that a rebuild during the
    bench (others work in this tree) cannot break a measurement."""
    global RBK, PLUGINS
    b = os.path.join(CACHE, "snapshot")
    for attempt in range(5):
        shutil.rmtree(b, ignore_errors=True)
        os.makedirs(os.path.join(b, "plugins"))
        try:
            shutil.copy2(BUILT_RBK, os.path.join(b, "rbk"))
            mods = os.path.join(os.path.dirname(BUILT_RBK), "modules")
            if os.path.isdir(mods):  # its modules, found beside it
                shutil.copytree(mods, os.path.join(b, "modules"))
            for f in os.listdir(BUILT_PLUGINS):
                if f.startswith("rbk-") and f.endswith(".so"):
                    shutil.copy2(os.path.join(BUILT_PLUGINS, f), os.path.join(b, "plugins", f))
            ok = subprocess.run([os.path.join(b, "rbk"), "plugins"], env=dict(os.environ, RBK_PLUGIN_PATH=os.path.join(b, "plugins")),
                                capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            RBK, PLUGINS = os.path.join(b, "rbk"), os.path.join(b, "plugins")
            return
        time.sleep(2)
    notes.append("could not snapshot build/rbk; measured in place")


def main():
    if not os.access(RBK, os.X_OK):
        print(f"bench: {RBK} is not built (make all)", file=sys.stderr)
        return 0
    os.makedirs(WORK, exist_ok=True)
    snapshot()
    t_start = time.time()
    mach = machine()
    peers = peer_versions()
    d = write_shell_defs()
    steps = [("shell", lambda: bench_shell(d)), ("pure", bench_pure), ("first", bench_first_action),
             ("resume", bench_resume)]
    store = None
    for name, fn in steps:
        try:
            fn()
        except Exception as ex:  # a benchmark that breaks is reported, not fatal
            notes.append(f"{name}: {type(ex).__name__}: {ex}")
    try:
        store = bench_store()
    except Exception as ex:
        notes.append(f"store: {type(ex).__name__}: {ex}")
    for name, fn in (("memory", lambda: bench_memory(d, store)), ("soak", bench_soak), ("scale", bench_scale)):
        try:
            fn()
        except Exception as ex:
            notes.append(f"{name}: {type(ex).__name__}: {ex}")
    mach["load average at end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    elapsed = time.time() - t_start

    t = table()
    print()
    print(t)
    print()
    for n in notes:
        print("note:", n)

    md = ["# rbk benchmarks (`make bench`)", "",
          "Measured side by side in one run; reported, never asserted. Each row states its goal: "
          "the engine's cost should vanish next to the commands it runs (a shell step within 1.5x of bash, "
          "at least 100x cheaper than an ansible task; the first action within 3x a bare launch of it), "
          "pure states twice as fast as an in-memory peer with rbk's whole process and durable record "
          "counted, the record interactive at a million events; on a shared PostgreSQL store, throughput "
          "that grows with agents. docs/performance.md says why, and where the time goes. "
          "Timings are medians (hyperfine, or own repetition); \"cpu\" is user+system time. "
          "Per-step figures subtract an empty run of the same tool (process start, store open), "
          "so they are each tool's marginal cost of one step.", "",
          "## Machine", ""]
    md += [f"- {k}: {v}" for k, v in mach.items()]
    md += ["", "## Peers", ""]
    md += [f"- {k}: {v if v else 'peer unavailable'}" for k, v in peers.items()]
    md += ["", "## Results", "", t, "", "## Raw figures", ""]
    md += [f"- {r}" for r in raw]
    if floors:
        md += ["", "## Why a goal is missed", ""] + [f"- {f}" for f in floors]
    if notes:
        md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md += ["", f"The whole bench took {elapsed:.0f} s.", ""]
    with open(os.path.join(BENCH, "results.md"), "w") as f:
        f.write("\n".join(md))
    log(f"wrote bench/results.md ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as ex:  # never fail on a figure, nor on a broken benchmark
        print(f"bench: {type(ex).__name__}: {ex}", file=sys.stderr)
        sys.exit(0)
