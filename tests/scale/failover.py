#!/usr/bin/env python3
"""Failover under fire: agents killed and paused while they execute runs.

Three `rbk agent --queue pool` processes (lease 2s, poll 200ms, concurrency
4), each in a process group of its own and with a home of its own (a host),
share one PostgreSQL store (a fresh schema of $RBK_TEST_PG). Runs of
tests/fixtures/scale/ledger-chain.yaml (five steps, non-idempotent
testkit.ledger and idempotent testkit.ledger_idem in turn, 100-400 ms each,
one ledger file per run) are enqueued with `rbk run --queue pool --detach`,
and while they execute, about every second, at random, one of:

  kill   SIGKILL of an agent process (its executors die of their parent-death
         signal, their actions with them); a new agent with a fresh home
         takes its place;
  stop   SIGSTOP of an agent's process group (the agent and its executors;
         the actions run in groups of their own) for 3-4 s, longer than the
         lease, then SIGCONT.

At least one agent is always running. The kills and stops go on for
--chaos-for seconds at most (60), then the agents finish what is left in
peace. When every run has ended (succeeded or needs_attention), the agents
are stopped with SIGTERM and checked, each an `ok NAME` / `FAIL NAME: why`
line (tests/run counts them):

  lost        every run reached succeeded or needs_attention
  double      no non-idempotent step's line is twice in its run's ledger
  succeeded   a succeeded run has each non-idempotent step's line exactly
              once and each idempotent step's at least once
  recorded    every ledger line is of a step with a step_started event
  history     no run started twice, no completed step started again,
              no event after run_finished (completed steps never rerun)
  attention   a run in needs_attention stopped because a takeover found a
              non-idempotent step in flight: its last step_started has no
              step_finished, a takeover ("resumed") follows it, then
              needs_attention naming that step
  verify      `rbk verify` finds the event chain intact
  processes   no rbk process of this test is left once the agents stopped
  sanitizer   no AddressSanitizer/UBSan report in any agent's output
  chaos       there were kills, stops and takeovers (else nothing was shown)

Comment lines (#) give the seed, the counts and the takeover time: for each
takeover (a run_status "resumed" event not right after run_started), the
time from the event before it (the last one of the executor that lost the
run) to it, on the store's clock. Also the store's stalls: stretches of
time in which no event of any run was written (a paused writer holding the
writers' lock stops every other writer).

Needs RBK_TEST_PG (eval "$(tests/pg/cluster.sh)"); without it: FAIL.
Usage: failover.py [--rbk RBK] [--root DIR] [--seed N] [--runs N] [--chaos-for S]
A failing run keeps its work directory and store schema (printed).
"""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

NONIDEM = ("one", "three", "five")
IDEM = ("two", "four")
DONE = ("succeeded", "needs_attention")
ENDED = DONE + ("failed", "aborted", "rolled_back")

T0 = time.monotonic()


def note(msg):
    now = time.time()
    wall = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
    print(f"[failover {time.monotonic() - T0:6.1f}s {wall}] {msg}", file=sys.stderr, flush=True)


def ok(name):
    print(f"ok {name}", flush=True)


FAILED = False


def fail(name, why):
    global FAILED
    FAILED = True
    why = why if len(why) < 3000 else why[:3000] + " ..."
    print(f"FAIL {name}: {why}", flush=True)


def check(cond, name, why):
    (ok if cond else lambda n: fail(n, why))(name)
    return cond


def at(ev):
    return datetime.strptime(ev["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


class Agent:
    def __init__(self, h, n):
        self.n = n
        self.home = os.path.join(h.tmp, f"agent{n}")
        os.makedirs(self.home)
        self.out = os.path.join(h.tmp, f"agent{n}.out")
        self.err = os.path.join(h.tmp, f"agent{n}.err")
        with open(self.out, "w") as o, open(self.err, "w") as e:
            # start_new_session: setsid, the agent leads a process group of
            # its own that its executors (but not their actions) share.
            self.p = subprocess.Popen(
                [h.rbk, "agent", "--queue", "pool", "--lease", "2s", "--poll", "200ms", "--concurrency", "4",
                 "--home", self.home], stdout=o, stderr=e, env=h.env, start_new_session=True)
        self.pid = self.p.pid
        self.stopped_until = None  # monotonic time of its SIGCONT while stopped
        self.dead = False

    @property
    def active(self):
        return not self.dead and self.stopped_until is None


class Harness:
    def __init__(self, a):
        self.a = a
        self.rbk = a.rbk
        self.root = a.root
        self.tmp = tempfile.mkdtemp(prefix="rbk-failover.")
        self.schema = f"failover_{os.getpid()}"
        self.pg = os.environ["RBK_TEST_PG"]
        self.url = f"{self.pg}&options=-csearch_path%3D{self.schema}"
        self.tag = f"{os.getpid()}-{random.getrandbits(32):08x}"
        self.env = dict(os.environ, RBK_STORE=self.url, RBK_HOME=os.path.join(self.tmp, "client"), NO_COLOR="1",
                        RBK_PLUGIN_PATH=f"{self.root}/build/plugins:{self.root}/build/test-plugins",
                        RBK_FAILOVER_TAG=self.tag)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=0:intercept_tls_get_addr=0")
        for k in ("RBK_CRASH_POINT", "RBK_PATH", "RBK_FAULT_IO", "RBK_FAULT_ALLOC"):
            self.env.pop(k, None)
        os.makedirs(self.env["RBK_HOME"])
        self.rng = random.Random(a.seed)
        self.agents = []
        self.nagents = 0
        self.kills = self.stops = 0
        self.runs = {}  # id -> ledger path
        self.enqueue_errors = []
        self.lock = threading.Lock()
        self.sanitizer_reports = []

    # --- commands ---------------------------------------------------------
    def rbk_cmd(self, *args, timeout=60):
        p = subprocess.run([self.rbk, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
            self.sanitizer_reports.append(f"rbk {' '.join(args)}: {p.stderr[-1500:]}")
        return p

    def psql(self, sql):
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.pg, "-c", sql],
                              capture_output=True, text=True)

    def start_agent(self):
        self.nagents += 1
        a = Agent(self, self.nagents)
        self.agents.append(a)
        note(f"agent{a.n} started (pid {a.pid})")
        return a

    def enqueue(self, i):
        ledger = os.path.join(self.tmp, "ledgers", f"l{i:03d}")
        args = ["run", os.path.join(self.root, "tests/fixtures/scale/ledger-chain.yaml"), "-p", f"ledger={ledger}",
                "--queue", "pool", "--detach"]
        for s in ("s1", "s2", "s3", "s4", "s5"):
            args += ["-p", f"{s}={self.sleeps[i][s]}"]
        p = self.rbk_cmd(*args)
        out = p.stdout.strip()
        if p.returncode != 0 or not out.isdigit():
            with self.lock:
                self.enqueue_errors.append(f"run {i}: exit {p.returncode}, out {out!r}, err {p.stderr.strip()[-300:]!r}")
            return
        with self.lock:
            self.runs[int(out)] = ledger

    def feeder(self):
        # The first dozen at once, the rest while the agents are under fire.
        first = min(12, self.a.runs)
        for i in range(first):
            self.enqueue(i)
        self.fed_first.set()
        for i in range(first, self.a.runs):
            time.sleep(self.a.feed)
            self.enqueue(i)
        self.fed_all.set()

    def statuses(self):
        p = self.rbk_cmd("history", "--json", "--limit", "100000")
        if p.returncode != 0:
            return None
        try:
            return {r["run"]: r["status"] for r in json.loads(p.stdout)["runs"]}
        except (ValueError, KeyError):
            return None

    def events(self, run):
        p = self.rbk_cmd("log", str(run), "--json")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    # --- chaos --------------------------------------------------------------
    def chaos_once(self):
        live = [a for a in self.agents if a.active]
        if len(live) < 2:
            return  # the last agent running is never touched
        victim = self.rng.choice(live)
        if self.rng.random() < 0.5:
            os.kill(victim.pid, signal.SIGKILL)
            victim.p.wait()
            victim.dead = True
            self.kills += 1
            note(f"SIGKILL agent{victim.n} (pid {victim.pid})")
            self.start_agent()
        else:
            d = self.rng.uniform(3.0, 4.0)
            os.killpg(victim.pid, signal.SIGSTOP)
            victim.stopped_until = time.monotonic() + d
            self.stops += 1
            note(f"SIGSTOP agent{victim.n}'s group (pgid {victim.pid}) for {d:.1f}s")

    def wake(self, now=None, every=False):
        for a in self.agents:
            if a.stopped_until is not None and (every or now >= a.stopped_until):
                os.killpg(a.pid, signal.SIGCONT)
                a.stopped_until = None
                note(f"SIGCONT agent{a.n}'s group")

    def run(self):
        self.sleeps = [{s: self.rng.randrange(100, 401, 10) for s in ("s1", "s2", "s3", "s4", "s5")}
                       for _ in range(self.a.runs)]
        os.makedirs(os.path.join(self.tmp, "ledgers"))
        r = self.psql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE; CREATE SCHEMA {self.schema}")
        if r.returncode != 0:
            fail("failover: a schema for the store", f"psql: {r.stderr.strip()}")
            return False
        self.fed_first, self.fed_all = threading.Event(), threading.Event()
        feeder = threading.Thread(target=self.feeder, daemon=True)
        feeder.start()
        self.fed_first.wait()
        for _ in range(3):
            self.start_agent()
        deadline = time.monotonic() + self.a.timeout
        chaos_until = time.monotonic() + self.a.chaos_for
        next_chaos = time.monotonic() + self.rng.uniform(0.7, 1.3)
        next_look = 0
        finished = False
        while time.monotonic() < deadline:
            now = time.monotonic()
            self.wake(now)
            if now >= next_look:
                next_look = now + 2
                st = self.statuses()
                if st is not None:
                    mine = {r: st.get(r, "?") for r in list(self.runs)}
                    counts = {}
                    for s in mine.values():
                        counts[s] = counts.get(s, 0) + 1
                    note(f"{len(mine)}/{self.a.runs} runs enqueued: " +
                         ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) +
                         f"; kills {self.kills}, stops {self.stops}")
                    if self.fed_all.is_set() and all(s in ENDED for s in mine.values()):
                        finished = True
                        break
            if now >= next_chaos and now < chaos_until:
                next_chaos = now + self.rng.uniform(0.7, 1.3)
                self.chaos_once()
            time.sleep(0.1)
        self.wake(every=True)
        self.finished = finished
        return True

    # --- the end --------------------------------------------------------------
    def stop_agents(self):
        self.wake(every=True)
        for a in self.agents:
            if not a.dead:
                a.p.send_signal(signal.SIGTERM)
        stuck = []
        for a in self.agents:
            if a.dead:
                continue
            try:
                a.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stuck.append(f"agent{a.n} (pid {a.pid}) did not stop within 30s of SIGTERM")
                os.killpg(a.pid, signal.SIGKILL)
                a.p.wait()
            a.dead = True
        return stuck

    def leftovers(self):
        """Processes (not zombies) that carry this test's tag in their environment."""
        found = []
        me = os.getpid()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if f"RBK_FAILOVER_TAG={self.tag}".encode() not in f.read().split(b"\0"):
                        continue
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
                state = stat.rsplit(")", 1)[1].split()[0]
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if state != "Z":
                found.append(f"pid {d} ({state}): {cmd}")
        return found

    def checks(self, stuck):
        a = self.a
        st = self.statuses() or {}
        runs = sorted(self.runs)
        # lost
        bad = {r: st.get(r, "missing") for r in runs if st.get(r) not in DONE}
        why = []
        if len(runs) != a.runs:
            why.append(f"{a.runs - len(runs)} of {a.runs} runs could not be enqueued: {self.enqueue_errors[:3]}")
        if not self.finished:
            why.append(f"not all ended within {a.timeout}s")
        if bad:
            why.append(f"{len(bad)} run(s) not succeeded nor needs_attention: " +
                       ", ".join(f"{r} {s}" for r, s in list(bad.items())[:10]))
        check(not why, "failover: 0 runs lost (every run reached succeeded or needs_attention)", "; ".join(why))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            evs = dict(zip(runs, pool.map(self.events, runs)))
        ledgers = {}
        for r in runs:
            try:
                with open(self.runs[r]) as f:
                    ledgers[r] = [line.split(" ", 1) for line in f.read().splitlines()]
            except FileNotFoundError:
                ledgers[r] = []

        def labels(r):
            c = {}
            for key, label in ledgers[r]:
                c[label] = c.get(label, 0) + 1
            return c

        # double
        why = []
        for r in runs:
            c = labels(r)
            twice = [s for s in NONIDEM if c.get(s, 0) > 1]
            if twice:
                why.append(f"run {r} ({st.get(r)}): {', '.join(twice)} executed {[c[s] for s in twice]} times; "
                           f"ledger {self.runs[r]}: {ledgers[r]}")
        check(not why, "failover: 0 non-idempotent steps executed twice", "; ".join(why[:5]))

        # succeeded
        why = []
        for r in runs:
            if st.get(r) != "succeeded":
                continue
            c = labels(r)
            wrong = [f"{s} x{c.get(s, 0)}" for s in NONIDEM if c.get(s, 0) != 1] + \
                    [f"{s} x0" for s in IDEM if c.get(s, 0) < 1]
            if wrong:
                why.append(f"run {r}: {', '.join(wrong)} (ledger {ledgers[r]})")
        check(not why, "failover: every succeeded run has each non-idempotent step once, each idempotent one at least once",
              "; ".join(why[:5]))

        # recorded: every line of the ledger is of a step started in the store, with its key
        why = []
        for r in runs:
            started = {(e["data"]["key"], e["data"]["state"]) for e in evs[r] if e["kind"] == "step_started"}
            extra = [f"{k} {l}" for k, l in ledgers[r] if (k, l) not in started]
            if extra:
                why.append(f"run {r}: ledger lines without a step_started of that key: {extra}")
        check(not why, "failover: every ledger line is of a step recorded as started (same key)", "; ".join(why[:5]))

        # history: what the store says happened to each run, in order
        why = []
        for r in runs:
            ev = evs[r]
            starts = sum(e["kind"] == "run_started" for e in ev)
            ends = [i for i, e in enumerate(ev) if e["kind"] == "run_finished"]
            done, again = set(), []
            for e in ev:
                if e["kind"] == "step_finished" and e["data"].get("status") == "ok":
                    done.add(e["data"]["state"])
                elif e["kind"] == "step_started" and e["data"]["state"] in done:
                    again.append(e["data"]["state"])
            problems = []
            if starts > 1:
                problems.append(f"run_started {starts} times")
            if again:
                problems.append(f"completed step(s) started again: {again}")
            if ends and ends[0] != len(ev) - 1:
                problems.append(f"events after run_finished: {[e['kind'] for e in ev[ends[0] + 1:]]}")
            if problems:
                why.append(f"run {r} ({st.get(r)}): " + "; ".join(problems))
        check(not why, "failover: no run started twice, no completed step started again, nothing after run_finished",
              f"{len(why)} run(s): " + " | ".join(why[:5]))

        # attention
        why = []
        na = [r for r in runs if st.get(r) == "needs_attention"]
        for r in na:
            ev = evs[r]
            idx = [i for i, e in enumerate(ev) if e["kind"] == "run_status" and e["data"].get("status") == "needs_attention"]
            if not idx:
                why.append(f"run {r}: status needs_attention but no run_status needs_attention event")
                continue
            i = idx[-1]
            ss = [j for j in range(i) if ev[j]["kind"] == "step_started"]
            if not ss:
                why.append(f"run {r}: needs_attention with no step started before it")
                continue
            j = ss[-1]
            state = ev[j]["data"]["state"]
            between = [e["kind"] + ("/" + e["data"].get("reason", "") if e["kind"] == "run_status" else "")
                       for e in ev[j + 1:i]]
            finished_ = [e for e in ev[j + 1:i] if e["kind"] == "step_finished"]
            resumed = [e for e in ev[j + 1:i] if e["kind"] == "run_status" and e["data"].get("reason") == "resumed"]
            reason = ev[i]["data"].get("reason") or ""
            if state not in NONIDEM or finished_ or not resumed or f"step {state} " not in reason:
                why.append(f"run {r}: in flight {state} (non-idempotent: {state in NONIDEM}); between its "
                           f"step_started and needs_attention: {between}; reason {reason!r}")
        check(not why, f"failover: each of the {len(na)} runs in needs_attention had a non-idempotent step in "
              "flight at a takeover", "; ".join(why[:5]))

        # verify
        p = self.rbk_cmd("verify")
        check(p.returncode == 0, "failover: rbk verify: the event chain is intact",
              f"exit {p.returncode}: {(p.stdout + p.stderr).strip()[-500:]}")

        # processes
        left = []
        for _ in range(50):
            left = self.leftovers()
            if not left:
                break
            time.sleep(0.1)
        check(not left and not stuck, "failover: no rbk process left once the agents were stopped (SIGTERM)",
              "; ".join(stuck + left[:10]))

        # sanitizer
        reports = list(self.sanitizer_reports)
        for ag in self.agents:
            for f in (ag.out, ag.err):
                with open(f, errors="replace") as fh:
                    text = fh.read()
                if "Sanitizer" in text or "runtime error:" in text:
                    k = text.find("Sanitizer") if "Sanitizer" in text else text.find("runtime error:")
                    reports.append(f"{f}: {text[max(0, k - 200):k + 1200]}")
        check(not reports, "failover: no sanitizer report from rbk", "; ".join(reports[:2]))

        # takeovers
        times = []
        for r in runs:
            ev = evs[r]
            for i, e in enumerate(ev):
                if i and e["kind"] == "run_status" and e["data"].get("reason") == "resumed" and \
                        ev[i - 1]["kind"] != "run_started":
                    times.append(at(e) - at(ev[i - 1]))
        check(self.kills > 0 and self.stops > 0 and times, "failover: the agents were killed and paused, and runs "
              "were taken over", f"kills {self.kills}, stops {self.stops}, takeovers {len(times)}")
        # the store's availability: stretches of time in which no run got an event
        stamps = sorted(at(e) for r in runs for e in evs[r])
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        if gaps:
            long_ = [g for g in gaps if g > 1.5]
            print(f"# store: longest stretch with no event written {max(gaps):.2f} s; stretches over 1.5 s: "
                  f"{len(long_)}, {sum(long_):.1f} s of {stamps[-1] - stamps[0]:.1f} s")
        if times:
            print(f"# takeover: n={len(times)} min={min(times):.2f} median={statistics.median(times):.2f} "
                  f"max={max(times):.2f} s")
        else:
            print("# takeover: n=0")
        counts = {}
        for r in runs:
            counts[st.get(r, "missing")] = counts.get(st.get(r, "missing"), 0) + 1
        print(f"# kills={self.kills} stops={self.stops} agents_started={self.nagents} runs={len(runs)} " +
              " ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" seed={a.seed}")

    def cleanup(self, keep):
        for a in self.agents:
            if not a.dead:
                try:
                    os.killpg(a.pid, signal.SIGCONT)
                    os.killpg(a.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                a.p.wait()
        if keep:
            print(f"# kept for inspection: {self.tmp}, the store: {self.url}", flush=True)
        else:
            self.psql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--rbk", default=os.environ.get("RBK") or os.path.join(here, "build/san/rbk"))
    ap.add_argument("--root", default=os.environ.get("RBK_ROOT") or here)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAILOVER_SEED") or time.time_ns() % 10**9))
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--feed", type=float, default=0.3, help="seconds between enqueues after the first dozen")
    ap.add_argument("--chaos-for", type=float, default=60,
                    help="seconds of kills and stops at most; then the agents finish what is left in peace")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (it is kept on failure)")
    a = ap.parse_args()
    a.rbk = os.path.abspath(a.rbk)
    a.root = os.path.abspath(a.root)
    print(f"# seed: {a.seed} (again: FAILOVER_SEED={a.seed})", flush=True)
    if not os.environ.get("RBK_TEST_PG"):
        fail("failover needs a PostgreSQL server", 'RBK_TEST_PG is not set (eval "$(tests/pg/cluster.sh)")')
        return 1
    h = Harness(a)
    note(f"seed {a.seed}, {a.runs} runs, store schema {h.schema}, work directory {h.tmp}")
    stuck = []
    try:
        if not h.run():
            return 1
        stuck = h.stop_agents()
        h.checks(stuck)
    finally:
        h.cleanup(a.keep or FAILED)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
