-- rbk store, schema version 1 (SQLite).
--
-- engine/src/store/sqlite.c embeds this text as migration 1 and records it in
-- PRAGMA user_version; tests/unit/test_store.c checks the two stay
-- byte-identical. Later versions are new migrations, never edits of this one.
--
-- The event log is the truth. runs and steps are indexes derived from it,
-- updated in the same transactions as the events they summarize.

-- A runbook's exact bytes, stored once per content.
CREATE TABLE sources (
	sha256 TEXT PRIMARY KEY,
	bytes  BLOB NOT NULL
);

CREATE TABLE runs (
	id              INTEGER PRIMARY KEY, -- 1, 2, 3 ...: short ids an operator types
	runbook         TEXT NOT NULL,
	status          TEXT NOT NULL,
	actor           TEXT NOT NULL,       -- user@host, or scheduler
	created_at      TEXT NOT NULL,       -- UTC ISO-8601 with milliseconds
	updated_at      TEXT NOT NULL,
	parent_run      INTEGER NULL REFERENCES runs(id), -- the run that called this one
	parent_state    TEXT NULL,           -- the parent's state that made the call
	dry_run         INTEGER NOT NULL,
	params_json     TEXT NOT NULL,       -- secrets already masked by the caller
	source_sha256   TEXT NOT NULL REFERENCES sources(sha256),
	provenance_json TEXT NOT NULL,
	current_state   TEXT NULL,
	owner_pid       INTEGER NULL,
	lock_key        TEXT NULL
);

CREATE INDEX runs_by_runbook ON runs(runbook, created_at);
CREATE INDEX runs_by_status ON runs(status, created_at);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE INDEX runs_by_lock ON runs(lock_key) WHERE lock_key IS NOT NULL;

-- The audit chain, global across runs:
--   hash = SHA-256(prev_hash || seq "\n" run_id "\n" at "\n" actor "\n" kind "\n" data)
-- with prev_hash the previous event's hash as 64 hex digits (64 '0's for
-- seq 1), integers in decimal, the other fields as stored.
CREATE TABLE events (
	seq       INTEGER PRIMARY KEY,  -- 1, 2, 3 ... without gaps
	run_id    INTEGER NOT NULL REFERENCES runs(id),
	at        TEXT NOT NULL,        -- UTC ISO-8601 with milliseconds: 2026-11-21T11:44:45.123Z
	actor     TEXT NOT NULL,
	kind      TEXT NOT NULL,
	data      TEXT NOT NULL,        -- JSON
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);

CREATE INDEX events_by_run ON events(run_id, seq);

-- Append-only: a change by mistake fails here; one on purpose (dropping
-- these) is what the hash chain is for.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

-- One row per attempt of a state's action: what resume consults.
CREATE TABLE steps (
	run_id          INTEGER NOT NULL REFERENCES runs(id),
	state           TEXT NOT NULL,
	attempt         INTEGER NOT NULL,
	status          TEXT NOT NULL,
	started_seq     INTEGER NULL,  -- the step_started event
	ended_seq       INTEGER NULL,  -- the event that recorded its result
	idempotency_key TEXT NOT NULL UNIQUE, -- run:state:attempt
	PRIMARY KEY (run_id, state, attempt)
);

-- migration 2: the scheduler's record of fires.
--
-- One row per (runbook, schedule entry, nominal fire time), whatever was
-- decided for it: fired (with its run), missed (the scheduler was down
-- longer than catch_up), skipped (overlap: skip), queued (overlap: queue),
-- or firing (claimed; a scheduler that died before starting the run leaves
-- it so, and it is reported, not fired again). The unique key is what makes
-- a restarted scheduler never fire twice.
CREATE TABLE fires (
	id         INTEGER PRIMARY KEY,
	runbook    TEXT NOT NULL,
	entry      INTEGER NOT NULL,    -- index of the entry in the runbook's schedule
	nominal    TEXT NOT NULL,       -- UTC ISO-8601: the time the entry named
	decided_at TEXT NOT NULL,
	outcome    TEXT NOT NULL,       -- firing fired missed skipped queued failed
	run_id     INTEGER NULL REFERENCES runs(id),
	note       TEXT NULL,
	UNIQUE (runbook, entry, nominal)
);

-- Small facts the engine keeps between processes: the scheduler's last
-- tick (how far back a restarted scheduler must look for missed fires).
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- migration 3: where a run may execute and who executes it
-- (docs/scale-out.md): its queue, its executor's lease (milliseconds since
-- 1970 on the host's clock: an SQLite store serves one host) and its epoch,
-- the fencing token each claim bumps.
ALTER TABLE runs ADD COLUMN queue TEXT NULL;
ALTER TABLE runs ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE runs ADD COLUMN lease_until INTEGER NULL;
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_queue ON runs(queue, status) WHERE parent_run IS NULL;
