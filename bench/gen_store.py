#!/usr/bin/env python3
"""Builds an rbk store of N chained events, fast, for `make bench`.

rbk creates the empty store (its own schema and migrations); this script
then inserts runs, steps, sources and events directly with sqlite3, each
event chained with the store's exact rule (engine/src/store/sqlite.c chain_hash):

    hash = SHA-256(prev_hash || seq "\n" run_id "\n" at "\n" actor "\n" kind "\n" data)

with prev_hash the previous event's hash as 64 hex digits, 64 '0's for seq 1.

The runs look like real ones: run_created, run_started, then for each
shell.exec step a step_started / step_finished / transition triple, then
run_finished. One run (in the middle) is large, for `rbk log`; the others
have SMALL_STEPS steps each.

    gen_store.py --rbk build/rbk --home DIR --events 1000000 --big-steps 33333

Prints one JSON line: {"events": N, "runs": R, "big_run": ID, "small_run": ID}.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time

ACTOR = "bench@host"
SMALL_STEPS = 32  # 3 + 3*32 = 99 events a run


def runbook_source(name, steps):
    out = [f"rbk: 1\nname: {name}\nstart: s1\nstates:\n"]
    for i in range(1, steps + 1):
        nxt = f"s{i + 1}" if i < steps else "done"
        out.append(f"  s{i}:\n    do: shell.exec\n    with: {{argv: [/bin/true]}}\n    next: {nxt}\n")
    out.append("  done: {end: success}\n")
    return "".join(out).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rbk", required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--big-steps", type=int, default=33_333)
    a = ap.parse_args()

    os.makedirs(a.home, exist_ok=True)
    db = os.path.join(a.home, "rbk.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    # rbk creates the store with its own schema.
    subprocess.run([a.rbk, "history", "--home", a.home], check=True, stdout=subprocess.DEVNULL)

    small_src = runbook_source("bench-small", SMALL_STEPS)
    big_src = runbook_source("bench-big", a.big_steps)
    small_sha = hashlib.sha256(small_src).hexdigest()
    big_sha = hashlib.sha256(big_src).hexdigest()

    per_small = 3 + 3 * SMALL_STEPS
    per_big = 3 + 3 * a.big_steps
    n_small = max(0, (a.events - per_big) // per_small)
    # The remainder goes to one last, shorter run.
    rest = a.events - per_big - n_small * per_small
    plan = [SMALL_STEPS] * n_small
    big_index = len(plan) // 2
    plan.insert(big_index, a.big_steps)
    if rest >= 3:
        plan.append((rest - 3) // 3)
    # Fill the exact count with lone events appended to the last run.
    total_planned = sum(3 + 3 * k for k in plan)
    pad = a.events - total_planned

    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("BEGIN")
    con.execute("INSERT INTO sources(sha256, bytes) VALUES (?, ?)", (small_sha, small_src))
    con.execute("INSERT INTO sources(sha256, bytes) VALUES (?, ?)", (big_sha, big_src))

    base_ms = 1767225600000  # 2026-01-01T00:00:00Z
    step_ms = 10

    sha = hashlib.sha256
    prev = "0" * 64
    seq = 0
    ev_rows, step_rows, run_rows = [], [], []
    big_run = small_run = None
    fin = '{"status":"ok","exit_code":0,"stdout":"","stderr":"","out":{"stdout_truncated":false,"stdout":"","stderr_truncated":false,"stderr":"","duration_ms":1,"exit_code":0},"attempts":1,"error":null,"duration_ms":2}'

    def flush():
        con.executemany("INSERT INTO events(seq, run_id, at, actor, kind, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)", ev_rows)
        con.executemany("INSERT INTO steps(run_id, state, attempt, status, started_seq, ended_seq, idempotency_key) VALUES (?,?,?,?,?,?,?)", step_rows)
        con.executemany("INSERT INTO runs(id, runbook, status, actor, created_at, updated_at, parent_run, parent_state, dry_run, params_json, source_sha256, provenance_json, current_state, owner_pid, lock_key) VALUES (?,?,?,?,?,?,NULL,NULL,0,'{}',?,?,'done',NULL,NULL)", run_rows)
        ev_rows.clear(); step_rows.clear(); run_rows.clear()

    cache_at = {}
    for run_id, k in enumerate(plan, start=1):
        big = run_id - 1 == big_index
        name, src_sha = ("bench-big", big_sha) if big else ("bench-small", small_sha)
        if big:
            big_run = run_id
        elif small_run is None and run_id > 1:
            small_run = run_id
        events = [("run_created", json.dumps({"runbook": name, "source_sha256": src_sha, "dry_run": False, "params": {},
                                              "provenance": {"path": name + ".yaml"}, "parent_run": None, "parent_state": None,
                                              "lock_key": None, "owner_pid": 1000 + run_id}, separators=(",", ":"))),
                  ("run_started", '{"start":"s1","status":"running"}')]
        started = seq + 1
        for i in range(1, k + 1):
            st = f"s{i}"
            key = f"{run_id}:{st}:1"
            events.append(("step_started", '{"state":"%s","attempt":1,"key":"%s","action":"shell.exec","params":{"argv":["/bin/true"]}}' % (st, key)))
            events.append(("step_finished", '{"state":"%s","attempt":1,"status":"ok","result":%s}' % (st, fin)))
            nxt = f"s{i + 1}" if i < k else "done"
            events.append(("transition", '{"from":"%s","to":"%s","via":"next","branch":null,"guard":null}' % (st, nxt)))
            s0 = started + 2 + 3 * (i - 1)
            step_rows.append((run_id, st, 1, "ok", s0, s0 + 1, key))
        if run_id == len(plan):  # exact count: a few variables set at the end
            events.extend(("vars_set", '{"state":null,"vars":{"pad":%d}}' % j) for j in range(pad))
        events.append(("run_finished", '{"status":"succeeded","reason":null}'))
        first_at = None
        for kind, data in events:
            seq += 1
            ms = base_ms + seq * step_ms
            sec = ms // 1000
            stamp = cache_at.get(sec)
            if stamp is None:
                cache_at.clear()
                stamp = cache_at[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            at = "%s.%03dZ" % (stamp, ms % 1000)
            if first_at is None:
                first_at = at
            h = sha(("%s%d\n%d\n%s\n%s\n%s\n%s" % (prev, seq, run_id, at, ACTOR, kind, data)).encode()).hexdigest()
            ev_rows.append((seq, run_id, at, ACTOR, kind, data, prev, h))
            prev = h
        run_rows.append((run_id, name, "succeeded", ACTOR, first_at, at, src_sha, json.dumps({"path": name + ".yaml"})))
        if len(ev_rows) >= 50_000:
            flush()
    flush()
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print(json.dumps({"events": seq, "runs": len(plan), "big_run": big_run, "small_run": small_run,
                      "big_run_events": 3 + 3 * a.big_steps}))


if __name__ == "__main__":
    sys.exit(main())
