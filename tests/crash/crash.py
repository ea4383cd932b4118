#!/usr/bin/env python3
"""Crash tests for rbk (architecture.md "Durability and resume").

Every runbook in tests/crash/runbooks is run to its end many times while rbk
is killed with SIGKILL:

  sweep   at every crash point (RBK_CRASH_POINT=NAME:N, every N up to the
          number of passages), in each command of the uninterrupted run's
          chain (`run`, then `approve` for a runbook that asks);
  random  from outside, after a random delay; the resumes that follow may be
          killed again. Seedable: --seed (the seed is printed).

After a kill the harness acts like an operator until the run ends: `rbk
resume RUN`; on needs_attention `--mark-step success` when the ledger shows
the in-flight key written (and the action was not meant to fail), else
`--retry-step`; on a pending approval `rbk approve RUN`, as someone other
than the launcher: the OS user rbk-bob (created when running as root; rbk
records the user running it). Without root, crash-approval's `distinct` is
dropped (a copy in the work directory) and the harness approves as itself.

Invariants, checked for every case from the ledger and the store:
  lost      every step (or undo) finished ok of a ledger action has its KEY in
            the ledger; no finished step is started again
  double    every KEY of a non-idempotent action (testkit.ledger) is in the
            ledger at most once, and started at most once
  barrier   every ledger line has a durable step_started/undo_started event;
            no action starts before the previous one's result is recorded
  terminal  every run ends succeeded, failed or rolled_back; the run stopped
            in needs_attention only when a non-idempotent step was in flight
  outcome   the outcome is the one of the same runbook run without a kill
  steps     the steps completed (in order) are those of the run without a kill
            (unless an operator decided on a step: a retried attempt counts as a
            try, and a polling step marked success stops polling)
  integrity runs.status agrees with the events; on SQLite PRAGMA
            integrity_check is ok too
  chain     the global SHA-256 event chain verifies (store.c chain_hash)
  timers    a durable wait is not restarted nor left early, a retry or poll
            delay is honoured, an approval is requested once per visit
  sanitizer no AddressSanitizer/UBSan report from any command

The store is the test run's backend (tests/lib/storedb.py): SQLite in each
case's home, or with RBK_STORE a PostgreSQL URI (tests/run's PostgreSQL
pass) a schema of its own per case.

Output: one `ok NAME` or `FAIL NAME: why` line per invariant and mode, then
the counts. Modes: --quick (make test: the sweep and some random kills) and
the default/--count N (make crashtest: the sweep, then random kills until N
kills in all). A failing case keeps its home directory for inspection.
"""
import argparse
import calendar
import grp
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests/lib"))
import storedb  # noqa: E402
RUNBOOKS = os.path.join(HERE, "runbooks")

POINTS = ["step.before_start", "step.after_start", "action.returned", "result.before_commit",
          "result.after_commit", "undo.after_start"]
TERMINAL = {"succeeded", "failed", "rolled_back", "aborted"}
FINAL_OK = {"succeeded", "failed", "rolled_back"}
LEDGER = {"testkit.ledger", "testkit.ledger_idem"}
NOT_IDEMPOTENT = {"testkit.ledger"}

# Someone other than the launcher, for real: an OS user in the group rbk-team.
APPROVER = "rbk-bob"


def people():
    """The approver exists (created when absent): root only."""
    if os.geteuid() != 0:
        return False
    for _ in range(5):  # useradd fails while another holds /etc/passwd's lock
        subprocess.run(["groupadd", "-f", "rbk-team"], capture_output=True)
        if subprocess.run(["id", "-u", APPROVER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-M", "-N", "-g", "rbk-team", "-s", "/usr/sbin/nologin", APPROVER],
                           capture_output=True)
        if subprocess.run(["id", "-u", APPROVER], capture_output=True).returncode == 0:
            return True
        time.sleep(1)
    return False


PEOPLE = False  # set in main()

# The runbooks run (crash-child is only called) and their designed outcome.
SCENARIOS = [
    ("crash-seq", "succeeded"),
    ("crash-retry", "succeeded"),
    ("crash-poll", "succeeded"),
    ("crash-rollback", "rolled_back"),
    ("crash-rollback-ni", "rolled_back"),
    ("crash-fail", "failed"),
    ("crash-approval", "succeeded"),
    ("crash-wait", "succeeded"),
    ("crash-call", "succeeded"),
    ("crash-vars", "succeeded"),
]

FAMILIES = [
    ("lost", "no completed step lost"),
    ("double", "no non-idempotent step executed twice"),
    ("barrier", "every side effect has a durable started event"),
    ("terminal", "every run ends terminal; needs_attention only for a non-idempotent step in flight"),
    ("outcome", "the outcome equals the uninterrupted run's"),
    ("steps", "the completed steps equal the uninterrupted run's"),
    ("integrity", "store integrity_check ok and runs.status agrees with the events"),
    ("chain", "event hash chain verifies"),
    ("timers", "waits, retry and poll delays and approvals survive kills"),
    ("sanitizer", "no sanitizer report"),
]

MAX_COMMANDS = 60  # per case: more means the harness is stuck
CMD_TIMEOUT = 60   # seconds for one rbk command


class Config:
    pass


# ---- reading the store ----------------------------------------------------

def read_store(home, store=None):
    """(runs {id: row dict}, events [dict]) or (None, None) without a store
    (store: its PostgreSQL URL, else HOME/rbk.db)."""
    try:
        db = storedb.connect(home, timeout=30, missing_ok=True, store=store)
    except (sqlite3.DatabaseError, storedb.Error):
        return {}, []
    if db is None:
        return None, None
    def dicts(cur):
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r)) for r in cur]
    try:
        runs = {r["id"]: r for r in dicts(db.execute("SELECT * FROM runs ORDER BY id"))}
        events = []
        for e in dicts(db.execute("SELECT seq, run_id, at, actor, kind, data, prev_hash, hash FROM events ORDER BY seq")):
            try:
                e["d"] = json.loads(e["data"])
            except ValueError:
                e["d"] = {}
            if e["kind"] == "batch" and isinstance(e["d"], dict):
                # The pure events it holds, each as readers of the timeline
                # see it; the chain is checked on the batch as stored.
                for i, sub in enumerate(e["d"].get("events", []), 1):
                    events.append(dict(e, kind=sub["kind"], d=sub["data"], part=i, stored_kind="batch"))
                continue
            events.append(e)
        return runs, events
    except (sqlite3.DatabaseError, storedb.Error):
        return {}, []
    finally:
        db.close()


def fold(events):
    """A run's state from its events, as runstate.c folds them (the parts
    the harness needs)."""
    f = {"status": "running", "started": False, "flight": None, "child": 0, "children": [],
         "approval_pending": False, "last_reason": None}
    for e in events:
        k, d = e["kind"], e["d"]
        if k == "run_started":
            f["started"] = True
            f["status"] = "running"
        elif k in ("step_started", "undo_started"):
            f["flight"] = {"kind": "step" if k == "step_started" else "undo", "state": d.get("state"),
                           "attempt": d.get("attempt"), "key": d.get("key"), "action": d.get("action"),
                           "params": d.get("params") or {}}
        elif k in ("step_finished", "undo_finished"):
            f["flight"] = None
        elif k == "operator_decided":
            if d.get("decision") == "retry":
                f["flight"] = None
        elif k == "call_started":
            f["child"] = d.get("child", 0)
            f["children"].append(f["child"])
        elif k in ("step_retry", "step_poll"):
            f["child"] = 0
        elif k == "transition":
            f["child"] = 0
            f["approval_pending"] = False
        elif k == "approval_requested":
            f["approval_pending"] = True
        elif k == "approval_decided":
            f["approval_pending"] = False
        elif k in ("run_status", "run_finished"):
            if d.get("status"):
                f["status"] = d["status"]
            f["last_reason"] = d.get("reason")
    return f


def read_ledger(path):
    lines = []
    if os.path.exists(path):
        with open(path, errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line:
                    key, _, label = line.partition(" ")
                    lines.append((key, label))
    return lines


def chain_errors(events):
    """Recompute the global chain: hash = SHA-256(prev_hash || seq \\n run_id
    \\n at \\n actor \\n kind \\n data), the first prev_hash 64 zeros."""
    prev = "0" * 64
    expect = 1
    for e in events:
        if e.get("part", 1) > 1:
            continue  # the rest of a batch already checked
        if e["seq"] != expect:
            return f"seq {e['seq']} where {expect} was expected"
        if e["prev_hash"] != prev:
            return f"event {e['seq']}: prev_hash is not the hash of event {e['seq'] - 1}"
        canon = f"{e['seq']}\n{e['run_id']}\n{e['at']}\n{e['actor']}\n{e.get('stored_kind', e['kind'])}\n{e['data']}"
        h = hashlib.sha256(prev.encode() + canon.encode()).hexdigest()
        if h != e["hash"]:
            return f"event {e['seq']} ({e['kind']} of run {e['run_id']}): stored hash differs from the recomputed one"
        prev = h
        expect += 1
    return None


def iso_ms(at):
    """'2026-11-21T11:44:45.123Z' -> Unix milliseconds."""
    try:
        base, _, frac = at.rstrip("Z").partition(".")
        t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return t * 1000 + int((frac + "000")[:3])
    except ValueError:
        return 0


def integrity(home, store=None):
    if store:
        return None  # SQLite's own check of its file
    db = sqlite3.connect(os.path.join(home, "rbk.db"), timeout=30)
    try:
        rows = [r[0] for r in db.execute("PRAGMA integrity_check")]
        return None if rows == ["ok"] else "; ".join(rows)[:300]
    except sqlite3.DatabaseError as ex:
        return f"integrity_check: {ex}"
    finally:
        db.close()


# ---- one case: run, kill, recover, check ----------------------------------

class Case:
    def __init__(self, cfg, name, outcome_ref, tag, crash=None, rng=None, kill_plan=None):
        self.cfg = cfg
        self.name = name
        self.ref = outcome_ref          # the reference result (None for the reference run itself)
        self.tag = tag
        self.crash = crash              # (command index, point, n) for the sweep
        self.rng = rng
        self.kill_plan = kill_plan      # random mode: {"delay": seconds, "p_again": p, "max": n}
        self.home = os.path.join(cfg.workdir, tag)
        self.ledger = os.path.join(self.home, "ledger")
        self.store = storedb.fresh_store()  # PostgreSQL: a schema of its own; SQLite: None (the home's)
        self.file = os.path.join(RUNBOOKS, name + ".yaml")
        self.kills = self.resumes = self.commands = 0
        self.targeted_killed = False
        self.durations = []
        self.log = []                   # (argv, rc, seconds)
        self.violations = {}            # family -> [text]
        self.stops = []                 # needs_attention stops: (run, justified, why)
        self.checked_steps = 0
        self.lost = self.doubles = 0
        self.non_terminal = 0
        self.path = None
        self.outcome = None
        self.chain_len = 0
        self.stuck = None
        self.last_args, self.last_err, self.last_rc = [], "", 0
        self.decided = False
        self.lsan_failures = 0
        self.seen_stops = set()

    def bad(self, family, text):
        self.violations.setdefault(family, []).append(text)

    # -- commands --

    def env(self, crash_spec=None):
        e = dict(os.environ)
        for k in ("RBK_CRASH_POINT", "NO_COLOR"):
            e.pop(k, None)
        e["RBK_HOME"] = self.home
        if self.store:
            e["RBK_STORE"] = self.store
        e["RBK_PLUGIN_PATH"] = self.cfg.plugin_path
        e["NO_COLOR"] = "1"
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if crash_spec:
            e["RBK_CRASH_POINT"] = crash_spec
        return e

    def command(self, args, user=None):
        """Run one rbk command (as user: see APPROVER), killing it when the
        plan says so. Returns (rc, stderr); rc -9 when killed."""
        idx = self.commands
        self.commands += 1
        crash_spec = None
        if self.crash and self.crash[0] == idx:
            crash_spec = f"{self.crash[1]}:{self.crash[2]}"
        delay = None
        if self.kill_plan and self.kills < self.kill_plan["max"]:
            if idx == 0 or self.rng.random() < self.kill_plan["p_again"]:
                # Not before rbk could have opened its store, mostly.
                lo = self.kill_plan["min"] if self.rng.random() < 0.9 else 0.0
                delay = self.rng.uniform(lo, max(lo, self.kill_plan["delay"]))
        argv = [self.cfg.rbk] + args
        env = self.env(crash_spec)
        if user:
            argv = ["setpriv", f"--reuid={user}", "--regid=rbk-team", "--init-groups", "--"] + argv
            env["HOME"] = "/nonexistent"
        out = os.path.join(self.home, f"cmd{idx:02d}.out")
        err = os.path.join(self.home, f"cmd{idx:02d}.err")
        t0 = time.monotonic()
        with open(out, "w") as fo, open(err, "w") as fe:
            p = subprocess.Popen(argv, cwd=self.home, env=env, stdout=fo, stderr=fe,
                                 stdin=subprocess.DEVNULL)
            ext_kill = False
            try:
                p.wait(timeout=delay if delay is not None else CMD_TIMEOUT)
            except subprocess.TimeoutExpired:
                if delay is not None:
                    ext_kill = True
                    try:
                        os.kill(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    try:
                        p.wait(timeout=CMD_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        os.kill(p.pid, signal.SIGKILL)
                        p.wait()
                else:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    self.bad("terminal", f"{' '.join(args)} hung for {CMD_TIMEOUT}s and was killed")
        rc = p.returncode
        self.last_args, self.last_rc = args, rc
        self.last_err = ""
        if "--retry-step" in args or "--mark-step" in args:
            self.decided = True
        secs = time.monotonic() - t0
        self.durations.append(secs)
        with open(err, errors="replace") as fh:
            stderr = fh.read()
        errs = [l for l in stderr.splitlines() if l.startswith("rbk: error:")]
        self.last_err = errs[-1][len("rbk: error: "):] if errs else ""
        self.log.append((args, rc, round(secs, 3), crash_spec or (f"kill after {delay:.3f}s" if ext_kill else "")))
        report = stderr
        if "LeakSanitizer has encountered a fatal error" in stderr:
            # LSan's tracer failed to stop the process (it happens under
            # load, and under ptrace): no finding about rbk, so not counted.
            self.lsan_failures += 1
            report = "\n".join(l for l in stderr.splitlines()
                               if "Tracer caught signal" not in l and "LeakSanitizer" not in l)
        if "Sanitizer" in report or "runtime error:" in report:
            self.bad("sanitizer", f"{' '.join(args)}: " + report.strip()[-600:])
        if rc == -signal.SIGKILL:
            if crash_spec or ext_kill:
                self.kills += 1
                if crash_spec:
                    self.targeted_killed = True
            else:
                self.bad("terminal", f"{' '.join(args)} died of SIGKILL unasked")
        elif rc not in (0, 1, 2, 3, 4, 5):
            self.bad("terminal", f"{' '.join(args)} exited {rc}: {stderr.strip()[-300:]}")
        return rc, stderr

    # -- the operator --

    def drive(self):
        os.makedirs(self.home, exist_ok=True)
        if PEOPLE:  # a home shared with the approver, a ledger both append to
            os.chown(self.home, -1, grp.getgrnam("rbk-team").gr_gid)
            os.chmod(self.home, 0o2770)
            open(self.ledger, "a").close()
            os.chmod(self.ledger, 0o666)
        progress_marks = []
        while self.commands < MAX_COMMANDS:
            runs, events = read_store(self.home, self.store)
            tops = [i for i, r in (runs or {}).items() if r.get("parent_run") is None]
            if not tops:
                rc, _ = self.command(["run", self.file, "-p", f"ledger={self.ledger}"])
                continue
            top = min(tops)
            by_run = {}
            for e in events:
                by_run.setdefault(e["run_id"], []).append(e)
            folds = {i: fold(by_run.get(i, [])) for i in runs}
            if folds[top]["status"] in TERMINAL:
                return
            if not folds[top]["started"] and self.last_err:
                # Created, but its run_started never became durable: rbk
                # resume cannot continue it.
                self.stuck = f"rbk {' '.join(self.last_args)}: {self.last_err}"
                return
            # The run to act on: follow non-terminal children down.
            t = top
            seen = set()
            while folds[t]["child"] and folds[t]["child"] in folds and t not in seen:
                seen.add(t)
                c = folds[t]["child"]
                if folds[c]["status"] in TERMINAL:
                    break
                t = c
            ft = folds[t]
            user = None
            if self.last_rc == -signal.SIGKILL:
                progress_marks = []  # a killed command need not have made progress
            progress_marks.append((len(events), ft["status"], t))
            if len(progress_marks) >= 4 and len(set(progress_marks[-4:])) == 1:
                self.stuck = (f"no progress after 4 commands, the last: rbk {' '.join(self.last_args)}: "
                              f"{self.last_err or 'exit ' + str(self.last_rc)}")
                return
            if ft["status"] == "needs_attention" and ft["flight"]:
                args = self.decide(t, folds, by_run)
            elif t != top and ft["status"] == "needs_attention" and not ft["flight"]:
                args = ["resume", str(top)]
            elif ft["status"] == "needs_attention":
                self.note_stop(t, folds, by_run)
                args = ["resume", str(t), "--retry-step"]
            elif ft["status"] == "waiting" and ft["approval_pending"]:
                args = ["approve", str(t)]
                user = APPROVER if PEOPLE else None
            elif folds[top]["status"] in ("needs_attention", "waiting"):
                # The top run waits on a called run: continue that one (its
                # caller goes on when it ends).
                args = ["resume", str(t)]
            else:
                args = ["resume", str(top)]
            if args[0] == "resume":
                self.resumes += 1
            rc, stderr = self.command(args, user)
            if rc == 1 and "being worked on by a live process" in stderr:
                time.sleep(0.05)  # the killed owner's lock: gone once it is reaped
        self.stuck = f"still not ended after {MAX_COMMANDS} commands"

    def note_stop(self, t, folds, by_run):
        """Record a needs_attention stop and whether it was justified."""
        fl = folds[t]["flight"]
        mark = (t, fl and fl["key"], len(by_run.get(t, [])))
        if mark in self.seen_stops:
            return  # the same stop again (the decision was killed)
        self.seen_stops.add(mark)
        ok, why = self.justified(t, folds, by_run, set())
        self.stops.append((t, ok, why))
        if not ok:
            self.bad("terminal", f"run {t} stopped in needs_attention without a non-idempotent step in flight: {why}")

    def justified(self, t, folds, by_run, seen):
        f = folds[t]
        fl = f["flight"]
        if fl is None:
            return False, f"nothing in flight (reason: {f['last_reason']})"
        if fl["action"] in NOT_IDEMPOTENT:
            return True, f"{fl['kind']} {fl['state']} ({fl['action']}) in flight"
        if fl["action"] in LEDGER:
            return False, f"idempotent {fl['kind']} {fl['state']} ({fl['action']}) in flight: it should run again"
        c = f["child"]
        if fl["kind"] == "step" and c and c in folds and c not in seen:
            seen.add(c)
            if folds[c]["status"] == "needs_attention":
                ok, why = self.justified(c, folds, by_run, seen)
                return ok, f"called run {c}: {why}"
            return False, (f"call step {fl['state']} in flight, its called run {c} is "
                           f"'{folds[c]['status']}' (reason: {f['last_reason']})")
        return False, f"{fl['kind']} {fl['state']} ({fl['action']}) in flight (reason: {f['last_reason']})"

    def decide(self, t, folds, by_run):
        self.note_stop(t, folds, by_run)
        fl = folds[t]["flight"]
        if fl["action"] in LEDGER:
            written = any(k == fl["key"] for k, _ in read_ledger(self.ledger))
            meant_to_fail = fl["params"].get("fail") is True
            if written and not meant_to_fail:
                return ["resume", str(t), "--mark-step", "success"]
            return ["resume", str(t), "--retry-step"]
        c = folds[t]["child"]
        if c and c in folds and folds[c]["status"] in TERMINAL:
            # A call step whose called run has ended: decide by its outcome.
            return ["resume", str(t), "--mark-step",
                    "success" if folds[c]["status"] == "succeeded" else "failure"]
        return ["resume", str(t), "--retry-step"]

    # -- the invariants --

    def check(self):
        runs, events = read_store(self.home, self.store)
        if runs is None:
            self.bad("terminal", "no store was created")
            return
        ledger = read_ledger(self.ledger)
        lkeys = {}
        for k, _ in ledger:
            lkeys[k] = lkeys.get(k, 0) + 1
        by_run = {}
        for e in events:
            by_run.setdefault(e["run_id"], []).append(e)
        started = {}     # (run, kind, state, attempt) -> [events]
        key_action = {}  # key -> action
        starts_per_key = {}
        for e in events:
            if e["kind"] in ("step_started", "undo_started"):
                d = e["d"]
                kind = "step" if e["kind"] == "step_started" else "undo"
                started.setdefault((e["run_id"], kind, d.get("state"), d.get("attempt")), []).append(e)
                if d.get("key"):
                    key_action[d["key"]] = d.get("action")
                    starts_per_key.setdefault(d["key"], []).append(e["seq"])
        finished_key_seq = {}
        # (1) lost: every finished-ok ledger step (and undo) is in the ledger.
        for e in events:
            if e["kind"] not in ("step_finished", "undo_finished") or e["d"].get("status") != "ok":
                continue
            d = e["d"]
            kind = "step" if e["kind"] == "step_finished" else "undo"
            st = started.get((e["run_id"], kind, d.get("state"), d.get("attempt")))
            if not st:
                continue
            s = st[-1]["d"]
            if s.get("key"):
                finished_key_seq.setdefault(s["key"], e["seq"])
            if s.get("action") not in LEDGER:
                continue
            self.checked_steps += 1
            if s.get("key") not in lkeys:
                self.lost += 1
                marked = (d.get("result") or {}).get("marked_by")
                self.bad("lost", f"run {e['run_id']}: {kind} {d.get('state')} attempt {d.get('attempt')} "
                                 f"finished ok (event {e['seq']}{', marked by ' + marked if marked else ''}) "
                                 f"but its key {s.get('key')} is not in the ledger")
        for key, seq in finished_key_seq.items():
            later = [x for x in starts_per_key.get(key, []) if x > seq]
            if later:
                self.bad("lost", f"key {key} finished (event {seq}) and was started again (event {later[0]})")
        # (2) double: a non-idempotent key at most once, started at most once.
        for key, n in lkeys.items():
            if key_action.get(key) in NOT_IDEMPOTENT and n > 1:
                self.doubles += 1
                self.bad("double", f"non-idempotent key {key} ({key_action[key]}) is {n} times in the ledger")
        for key, seqs in starts_per_key.items():
            if key_action.get(key) in NOT_IDEMPOTENT and len(seqs) > 1 and lkeys.get(key, 0) <= 1:
                self.bad("double", f"non-idempotent key {key} was started {len(seqs)} times (events {seqs})")
        # barrier: each ledger line has a durable started event.
        for key in lkeys:
            if key not in key_action:
                self.bad("barrier", f"ledger line {key} has no step_started/undo_started event in the store")
        # (3) terminal: every run (called runs too) ended.
        folds = {i: fold(by_run.get(i, [])) for i in runs}
        for i in sorted(runs):
            f = folds[i]
            if f["status"] not in FINAL_OK:
                self.non_terminal += 1
                parent = runs[i].get("parent_run")
                what = f"called by run {parent}" if parent else "top run"
                orphan = parent and i not in folds.get(parent, {}).get("children", [])
                stuck = f"; {self.stuck}" if self.stuck and i == min(runs) else ""
                self.bad("terminal", f"run {i} ({what}{', never recorded by its caller' if orphan else ''}) "
                                     f"was left '{f['status']}'"
                                     f"{' without a durable run_started' if not f['started'] else ''}"
                                     f" (reason: {f['last_reason']}){stuck}")
        if self.stuck and all(folds[i]["status"] in FINAL_OK for i in runs):
            self.bad("terminal", self.stuck)
        tops = [i for i, r in runs.items() if r.get("parent_run") is None]
        if tops:
            top = min(tops)
            self.outcome = folds[top]["status"]
            self.path = [e["d"].get("state") for e in by_run.get(top, [])
                         if e["kind"] == "step_finished" and e["d"].get("status") == "ok"]
        # (4) outcome
        if self.ref is not None:
            if self.outcome != self.ref["outcome"]:
                reason = folds[min(tops)]["last_reason"] if tops else None
                self.bad("outcome", f"ended '{self.outcome}' (reason: {reason}), "
                                    f"the uninterrupted run ends '{self.ref['outcome']}'")
            elif self.path != self.ref["path"] and not self.decided:
                self.bad("steps", f"completed steps {self.path}, the uninterrupted run completes {self.ref['path']}")
        # (5) integrity
        why = integrity(self.home, self.store)
        if why:
            self.bad("integrity", why)
        for i, r in runs.items():
            if r.get("status") != folds[i]["status"] and folds[i]["started"]:
                self.bad("integrity", f"run {i}: runs.status is '{r.get('status')}', its events say "
                                      f"'{folds[i]['status']}'")
        # barrier (results) and timers, run by run
        for i in sorted(runs):
            self.check_run_events(i, by_run.get(i, []))
        # (6) chain
        self.chain_len = len(events)
        why = chain_errors(events)
        if why:
            self.bad("chain", why)

    def check_run_events(self, run, events):
        """A result is durable before the next action starts; a durable timer
        or approval request is neither restarted nor cut short."""
        flight = None
        waits = {}      # state -> until_ms of the visit's durable wait_started
        asked = set()   # states whose approval was requested in this visit
        not_before = {}  # state -> at_ms of its retry/poll delay
        for e in events:
            k, d = e["kind"], e["d"]
            at = iso_ms(e["at"])
            if k in ("step_started", "undo_started"):
                if flight and flight[0] != d.get("key"):
                    self.bad("barrier", f"run {run}: event {e['seq']} starts {d.get('key')} while the result of "
                                        f"{flight[0]} (event {flight[1]}) was never recorded")
                flight = (d.get("key"), e["seq"])
                nb = not_before.pop(d.get("state"), None)
                if k == "step_started" and nb is not None and at < nb - 1:
                    self.bad("timers", f"run {run}: {d.get('key')} started {nb - at}ms before its retry/poll "
                                       f"delay ended (event {e['seq']})")
            elif k in ("step_finished", "undo_finished"):
                flight = None
            elif k == "operator_decided" and d.get("decision") == "retry":
                flight = None
            elif k in ("step_retry", "step_poll"):
                not_before[d.get("state")] = d.get("at_ms", 0)
            elif k == "wait_started":
                if d.get("state") in waits:
                    self.bad("timers", f"run {run}: the wait of {d.get('state')} started again (event {e['seq']}): "
                                       f"a durable timer restarted")
                waits[d.get("state")] = d.get("until_ms", 0)
            elif k == "approval_requested":
                if d.get("state") in asked:
                    self.bad("timers", f"run {run}: approval of {d.get('state')} requested again (event {e['seq']})")
                asked.add(d.get("state"))
            elif k == "transition":
                until = waits.pop(d.get("from"), None)
                if until is not None and d.get("via") == "next" and at < until - 1:
                    self.bad("timers", f"run {run}: left the wait {d.get('from')} {until - at}ms early "
                                       f"(event {e['seq']})")
                asked.discard(d.get("from"))
                waits.clear()

    def run(self):
        try:
            self.drive()
        except Exception as ex:  # a harness error is a failure too
            self.bad("terminal", f"harness error while driving: {ex!r}")
        try:
            self.check()
        except Exception as ex:
            self.bad("integrity", f"harness error while checking: {ex!r}")
        return self

    def describe(self):
        what = ""
        if self.crash:
            what = f"RBK_CRASH_POINT={self.crash[1]}:{self.crash[2]} in command {self.crash[0]}"
        elif self.kill_plan:
            what = "random kills"
        cmds = "; ".join(f"{' '.join(a)} -> {rc}{' [' + k + ']' if k else ''}" for a, rc, _, k in self.log)
        store = f" store {self.store}" if self.store else ""
        return f"{self.name} ({what}) home {self.home}{store}: {cmds}"


# ---- modes -----------------------------------------------------------------

class Tally:
    def __init__(self, mode):
        self.mode = mode
        self.lock = threading.Lock()
        self.cases = []
        self.kills = self.resumes = self.runs = self.steps = self.lost = self.doubles = 0
        self.non_terminal = 0
        self.stops = []
        self.fails = {}
        self.secs = 0.0
        self.lsan_failures = 0

    def add(self, case, keep):
        with self.lock:
            self.kills += case.kills
            self.resumes += case.resumes
            self.runs += 1
            self.steps += case.checked_steps
            self.lost += case.lost
            self.doubles += case.doubles
            self.non_terminal += case.non_terminal
            self.lsan_failures += case.lsan_failures
            self.stops += [(case.tag,) + s for s in case.stops]
            for fam, texts in case.violations.items():
                self.fails.setdefault(fam, []).append((case, texts))
            if not case.violations and not keep:
                shutil.rmtree(case.home, ignore_errors=True)
                storedb.drop_store(case.store)


def reference(cfg):
    """Each runbook run once without a kill: its outcome, path, chain of
    commands and duration."""
    refs = {}
    problems = []
    cases = []
    with ThreadPoolExecutor(cfg.jobs) as ex:
        for c in ex.map(lambda s: Case(cfg, s[0], None, f"ref-{s[0]}").run(), [s for s in cfg.scenarios]):
            cases.append(c)
    for (name, want), c in zip(cfg.scenarios, cases):
        refs[name] = {"outcome": c.outcome, "path": c.path, "commands": c.commands,
                      "duration": max(c.durations) if c.durations else 0.1}
        if c.outcome != want:
            runs, events = read_store(c.home, c.store)
            reason = None
            if events:
                for e in events:
                    if e["kind"] == "run_finished" and e["run_id"] == 1:
                        reason = e["d"].get("reason")
            problems.append(f"{name}: ended '{c.outcome}' (reason: {reason}), designed to end '{want}' "
                            f"(home {c.home})")
        elif c.violations:
            problems.append(f"{name}: " + "; ".join(f"{k}: {v[0]}" for k, v in c.violations.items()))
        else:
            shutil.rmtree(c.home, ignore_errors=True)
            storedb.drop_store(c.store)
    return refs, problems


def sweep(cfg, refs, tally, deadline=None):
    """Every crash point, every passage, in each command of the clean chain."""
    groups = []  # point by point, so that a time budget cuts every runbook alike
    for point in POINTS:
        for name, _ in cfg.scenarios:
            for ci in range(refs[name]["commands"]):
                groups.append((name, ci, point))

    def group(g):
        name, ci, point = g
        n = 1
        while n <= 500:
            if deadline and time.monotonic() > deadline:
                return
            c = Case(cfg, name, refs[name], f"sweep-{name}-c{ci}-{point}-{n}", crash=(ci, point, n)).run()
            tally.add(c, cfg.keep)
            if not c.targeted_killed:
                return
            n += 1

    with ThreadPoolExecutor(cfg.jobs) as ex:
        list(ex.map(group, groups))


def random_kills(cfg, refs, tally, want_kills, seed, deadline=None, max_cases=None):
    """Kills from outside at random instants until want_kills kills."""
    counter = [0]
    lock = threading.Lock()

    def worker(wid):
        while True:
            with lock:
                if tally.kills >= want_kills or (max_cases and counter[0] >= max_cases):
                    return
                if deadline and time.monotonic() > deadline:
                    return
                i = counter[0]
                counter[0] += 1
            rng = random.Random(seed * 1000003 + i)
            name = cfg.scenarios[i % len(cfg.scenarios)][0]
            ref = refs[name]
            plan = {"min": cfg.startup, "delay": ref["duration"] * 1.2 + 0.005, "p_again": 0.35, "max": 4}
            c = Case(cfg, name, ref, f"random-{i}-{name}", rng=rng, kill_plan=plan).run()
            tally.add(c, cfg.keep)

    with ThreadPoolExecutor(cfg.jobs) as ex:
        list(ex.map(worker, range(cfg.jobs)))


def signature(text):
    """A violation with its numbers, paths and keys blurred: one per kind of problem."""
    text = re.sub(r"/\S+", "PATH", text)
    return re.sub(r"\d+", "N", text)[:160]


def report(tally, max_kinds=4):
    nfail = 0
    for fam, title in FAMILIES:
        items = tally.fails.get(fam, [])
        name = f"{tally.mode}: {title}"
        if not items:
            print(f"ok {name}")
            continue
        nfail += 1
        kinds = {}
        for case, texts in items:
            for t in texts:
                k = kinds.setdefault(signature(t), [0, t, case])
                k[0] += 1
        total = sum(k[0] for k in kinds.values())
        shown = sorted(kinds.values(), key=lambda k: -k[0])[:max_kinds]
        parts = [f"({n}x) {t} [{case.describe()}]" for n, t, case in shown]
        more = f" || ... {len(kinds) - max_kinds} more kinds" if len(kinds) > max_kinds else ""
        print(f"FAIL {name}: {total} violation(s) in {len(items)} case(s), {len(kinds)} kind(s): "
              + " || ".join(parts) + more)
    return nfail


def counts(tally, secs):
    just = sum(1 for s in tally.stops if s[2])
    print(f"# {tally.mode}: {tally.kills} kills, {tally.resumes} resumes, {tally.runs} runs, "
          f"{tally.steps} completed steps checked, {tally.lost} lost steps, "
          f"{tally.doubles} double executions of non-idempotent steps, "
          f"{tally.non_terminal} runs left non-terminal, {len(tally.stops)} needs_attention stops "
          f"({just} justified, {len(tally.stops) - just} not), {tally.secs:.1f}s"
          + (f" ({tally.lsan_failures} LeakSanitizer tracer failures ignored)" if tally.lsan_failures else ""))


def main():
    ap = argparse.ArgumentParser(description="rbk crash tests")
    ap.add_argument("--rbk", default=os.path.join(ROOT, "build/rbk"), help="the rbk binary under test")
    ap.add_argument("--root", default=os.environ.get("RBK_ROOT", ROOT), help="the source tree (for build/)")
    ap.add_argument("--plugin-path", help="RBK_PLUGIN_PATH (default: ROOT/build/plugins:ROOT/build/test-plugins)")
    ap.add_argument("--quick", action="store_true", help="the sweep and a few random kills (make test)")
    ap.add_argument("--count", type=int, default=3000, help="kills in all, default mode (default 3000)")
    ap.add_argument("--seed", type=int, help="seed of the random kills (default: from the clock)")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--only", nargs="*", help="only these runbooks (names)")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep every case's home directory")
    ap.add_argument("--workdir", help="where homes go (default: a new temporary directory)")
    a = ap.parse_args()

    cfg = Config()
    cfg.rbk = os.path.abspath(a.rbk)
    root = os.path.abspath(a.root)
    cfg.plugin_path = a.plugin_path or f"{root}/build/plugins:{root}/build/test-plugins"
    cfg.jobs = a.jobs
    cfg.keep = a.keep
    cfg.scenarios = [s for s in SCENARIOS if not a.only or s[0] in a.only]
    cfg.workdir = a.workdir or tempfile.mkdtemp(prefix="rbk-crash-")
    os.makedirs(cfg.workdir, exist_ok=True)
    global PEOPLE, RUNBOOKS
    PEOPLE = people()
    if PEOPLE:
        os.chmod(cfg.workdir, 0o755)  # the approver reaches the homes
    else:
        # Nobody else to approve: the same runbooks, distinct dropped.
        copy = os.path.join(cfg.workdir, "runbooks")
        shutil.copytree(RUNBOOKS, copy, dirs_exist_ok=True)
        path = os.path.join(copy, "crash-approval.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("distinct: true", "distinct: false"))
        RUNBOOKS = copy
        print(f"# not root: {APPROVER} cannot approve; crash-approval runs without distinct")
    seed = a.seed if a.seed is not None else int(time.time() * 1000) % 1000000007
    mode = "quick" if a.quick else "long"
    if not os.access(cfg.rbk, os.X_OK):
        print(f"FAIL crash tests: no rbk binary at {cfg.rbk}")
        return 1
    # Work on a copy of the binary and plugins: a rebuild meanwhile (make in
    # another shell) must not change what is tested halfway.
    given = cfg.rbk
    snap = os.path.join(cfg.workdir, "bin")
    os.makedirs(snap, exist_ok=True)
    cfg.rbk = os.path.join(snap, "rbk")
    shutil.copy2(given, cfg.rbk)
    mods = os.path.join(os.path.dirname(os.path.abspath(given)), "modules")
    if os.path.isdir(mods):  # its modules, found beside it
        shutil.copytree(mods, os.path.join(snap, "modules"), dirs_exist_ok=True)
    dirs = []
    for i, d in enumerate(p for p in cfg.plugin_path.split(":") if p):
        dst = os.path.join(snap, f"plugins{i}")
        if os.path.isdir(d):
            shutil.copytree(d, dst, dirs_exist_ok=True)
        else:
            os.makedirs(dst, exist_ok=True)
        dirs.append(dst)
    cfg.plugin_path = ":".join(dirs)
    print(f"# crash tests ({mode}): rbk {given}, seed {seed} (rerun with --seed {seed}), "
          f"{cfg.jobs} jobs, homes in {cfg.workdir}")
    sys.stdout.flush()
    t0 = time.monotonic()

    t = time.monotonic()
    for _ in range(3):
        subprocess.run([cfg.rbk, "--version"], capture_output=True)
    cfg.startup = (time.monotonic() - t) / 3
    refs, problems = reference(cfg)
    if problems:
        print("FAIL reference runs end as designed: " + " || ".join(problems))
    else:
        print("ok reference runs end as designed")
    nfail = len(problems) > 0

    if a.quick:
        # A budget, so that a loaded machine still ends in about 2 minutes:
        # the sweep (about 40s on 2 idle cores) stops at 80s, the random
        # kills at 100s.
        deadline = t0 + 80.0
        sweep_t = Tally("quick sweep")
        if not a.no_sweep:
            sweep(cfg, refs, sweep_t, deadline)
            if time.monotonic() > deadline:
                print("# quick sweep: stopped by the time budget before its end")
        sweep_t.secs = time.monotonic() - t0
        rnd = Tally("quick random")
        # No budget here: make test always makes at least 200 kills.
        random_kills(cfg, refs, rnd, want_kills=max(60, 200 - sweep_t.kills), seed=seed, max_cases=800)
        tallies = [sweep_t, rnd]
    else:
        sweep_t = Tally("sweep")
        if not a.no_sweep:
            sweep(cfg, refs, sweep_t)
        sweep_t.secs = time.monotonic() - t0
        rnd = Tally("random")
        random_kills(cfg, refs, rnd, want_kills=max(0, a.count - sweep_t.kills), seed=seed)
        tallies = [sweep_t, rnd]
    rnd.secs = time.monotonic() - t0 - sweep_t.secs
    secs = time.monotonic() - t0
    for t in tallies:
        nfail += report(t)
    total = sum(t.kills for t in tallies)
    if a.quick and total < 200:
        print(f"FAIL quick: at least 200 kills: only {total}")
        nfail += 1
    for t in tallies:
        counts(t, secs)
    all_stops = [s for t in tallies for s in t.stops]
    print(f"# total: {total} kills, {sum(t.resumes for t in tallies)} resumes, {sum(t.runs for t in tallies)} runs, "
          f"{sum(t.steps for t in tallies)} completed steps checked, {sum(t.lost for t in tallies)} lost, "
          f"{sum(t.doubles for t in tallies)} doubles, {sum(t.non_terminal for t in tallies)} non-terminal, "
          f"{len(all_stops)} needs_attention stops ({sum(1 for s in all_stops if s[2])} justified), "
          f"{secs:.1f}s, seed {seed}")
    if not nfail and not a.keep and not a.workdir:
        shutil.rmtree(cfg.workdir, ignore_errors=True)
    elif nfail:
        print(f"# failing homes kept in {cfg.workdir}")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
