"""The audit chain from outside rbk: recompute it, and tamper with copies of
a store the way an attacker with write access to rbk.db would.

The rule (schemas/store.sql, engine/src/store/store.h):
    hash = SHA-256(prev_hash || "SEQ\\nRUN_ID\\nAT\\nACTOR\\nKIND\\nDATA")
with prev_hash the previous event's hash as 64 hex digits (64 '0's for the
first event). Columns are read and written as raw bytes so that a changed
byte stays exactly that byte.

A store is a file (SQLite: HOME/rbk.db) or, in the tests' PostgreSQL pass, a
schema (its URL, tests/lib/storedb.py): copies are new schemas, and text
reaches PostgreSQL as UTF-8 without NUL (change_byte keeps it so).
"""
import hashlib
import os
import re
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import storedb  # noqa: E402

ZERO = b"0" * 64
FIELDS = ("at", "actor", "kind", "data", "run_id", "prev_hash", "hash")
COLS = "seq, run_id, at, actor, kind, data, prev_hash, hash"


def chain_hash(prev, seq, run_id, at, actor, kind, data):
    canon = b"%d\n%d\n" % (seq, run_id) + at + b"\n" + actor + b"\n" + kind + b"\n" + data
    return hashlib.sha256(prev + canon).hexdigest().encode()


def connect(path, store=None):
    """The store at path (SQLite), or the PostgreSQL store URL store."""
    if store:
        return PgDB(store)
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.text_factory = bytes
    return db


class PgDB:
    """The few calls of sqlite3's that this module and audit.py make, on a
    PostgreSQL store: text comes back as bytes (UTF-8), bytes go in as text.
    Writes are sent together, before the next read and at close()."""

    def __init__(self, url):
        self.url = url
        self.pg = storedb.PgStore(url)
        self.pending = []

    def flush(self):
        if self.pending:
            self.pg.executescript("BEGIN;\n" + ";\n".join(self.pending) + ";\nCOMMIT;\n")
            self.pending = []

    def execute(self, sql, params=()):
        ps = []
        for v in params:
            if isinstance(v, (bytes, bytearray)):
                v = bytes(v).decode("utf-8")  # raises on what PostgreSQL's text cannot hold
            ps.append(v)
        q = storedb.bind(sql, ps)
        if q.lstrip().split(None, 1)[0].lower() in ("select", "with"):
            self.flush()
            cur = self.pg.execute(q)
            return storedb.Cursor([tuple(x.encode() if isinstance(x, str) else x for x in r) for r in cur.fetchall()],
                                  [d[0] for d in cur.description or ()])
        self.pending.append(q)
        return storedb.Cursor([], None)

    def commit(self):
        self.flush()

    def close(self):
        self.flush()


def pg_copy(src):
    """A new schema holding a copy of the store src (a URL) without its
    append-only triggers (LIKE copies no trigger, nor foreign key): its URL."""
    dst = storedb.fresh_store()
    a, b = (re.search(r"search_path%3D([A-Za-z0-9_]+)", u)[1] for u in (src, dst))
    storedb.PgStore(dst).executescript(f"""DO $$ DECLARE t text; BEGIN
        FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '{a}' LOOP
            EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL)', '{b}', t, '{a}', t);
            EXECUTE format('INSERT INTO %I.%I SELECT * FROM %I.%I', '{b}', t, '{a}', t);
        END LOOP; END $$;
""")
    return dst


def events(db):
    return db.execute(f"SELECT {COLS} FROM events ORDER BY seq").fetchall()


def recompute_ok(db):
    """Our own check of the whole chain: (count, first bad seq or 0)."""
    prev, n = ZERO, 0
    for i, (seq, run_id, at, actor, kind, data, ph, h) in enumerate(events(db), 1):
        if seq != i or ph != prev or chain_hash(prev, seq, run_id, at, actor, kind, data) != h:
            return n, i
        prev, n = h, n + 1
    return n, 0


def make_template(home, path, store=None):
    """A single-file copy of home/rbk.db (WAL content included) without the
    append-only triggers: those stop accidents, not attackers. Returns the
    template: path; on PostgreSQL (store: the URL of home's store) the URL
    of a schema holding the copy."""
    if store:
        return pg_copy(store)
    src = sqlite3.connect(os.path.join(home, "rbk.db"), timeout=10)
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.execute("DROP TRIGGER IF EXISTS events_no_update")
    dst.execute("DROP TRIGGER IF EXISTS events_no_delete")
    dst.commit()
    dst.close()
    return path


def fresh_copy(template, home):
    """A new store directory holding a copy of template; returns (the copy's
    PostgreSQL URL or None, a connection)."""
    os.makedirs(home)
    if storedb.is_pg(template):
        url = pg_copy(template)
        return url, PgDB(url)
    shutil.copyfile(template, os.path.join(home, "rbk.db"))
    return None, connect(os.path.join(home, "rbk.db"))


def get(db, seq, field):
    r = db.execute(f"SELECT {field} FROM events WHERE seq=?", (seq,)).fetchone()
    return r[0] if r else None


def put(db, seq, field, value):
    if field in ("run_id", "seq"):
        db.execute(f"UPDATE events SET {field}=? WHERE seq=?", (int(value), seq))
    else:  # the bytes as TEXT, unconverted
        db.execute(f"UPDATE events SET {field}=CAST(? AS TEXT) WHERE seq=?", (bytes(value), seq))


def change_byte(db, seq, field, pos=None, rnd=None):
    """Change exactly one byte of the field (for run_id: one decimal digit,
    still a number). Returns a description."""
    import random
    rnd = rnd or random
    old = get(db, seq, field)
    if field == "run_id":
        digits = bytearray(str(old).encode())
        pos = rnd.randrange(len(digits)) if pos is None else pos % len(digits)
        choices = [c for c in b"0123456789" if c != digits[pos] and not (pos == 0 and c == ord("0"))]
        digits[pos] = rnd.choice(choices)
        put(db, seq, field, int(digits))
        return f"run_id {old} -> {int(digits)}"
    old = bytes(old)
    pos = rnd.randrange(len(old)) if pos is None else pos % len(old)
    if isinstance(db, PgDB):
        # PostgreSQL's text is UTF-8: an ASCII byte, changed to another.
        ascii_at = [i for i in range(len(old)) if old[i] < 0x80]
        pos = min(ascii_at, key=lambda i: (abs(i - pos), i))
        new = rnd.choice([c for c in range(1, 128) if c != old[pos]])
    else:
        new = rnd.choice([c for c in range(1, 256) if c != old[pos]])
    put(db, seq, field, old[:pos] + bytes([new]) + old[pos + 1:])
    return f"{field}[{pos}] {old[pos]:#04x} -> {new:#04x}"


def delete(db, seq):
    db.execute("DELETE FROM events WHERE seq=?", (seq,))


def truncate(db, n):
    db.execute("DELETE FROM events WHERE seq > (SELECT MAX(seq) FROM events) - ?", (n,))


def head(db):
    return db.execute("SELECT MAX(seq) FROM events").fetchone()[0]


def rehash(db, first, last=None):
    """Recompute prev_hash and hash of events first..last (last None: to the
    end), each from the hash before it, as an attacker covering a change."""
    prev = get(db, first - 1, "hash") if first > 1 else ZERO
    q = f"SELECT {COLS} FROM events WHERE seq >= ? " + ("AND seq <= ? " if last else "") + "ORDER BY seq"
    rows = db.execute(q, (first, last) if last else (first,)).fetchall()
    for seq, run_id, at, actor, kind, data, _ph, _h in rows:
        h = chain_hash(prev, seq, run_id, at, actor, kind, data)
        put(db, seq, "prev_hash", prev)
        put(db, seq, "hash", h)
        prev = h


def rehash_own(db, seq):
    """Recompute only the event's own hash (its prev_hash is left as it is)."""
    _s, run_id, at, actor, kind, data, ph, _h = db.execute(f"SELECT {COLS} FROM events WHERE seq=?", (seq,)).fetchone()
    put(db, seq, "hash", chain_hash(ph, seq, run_id, at, actor, kind, data))


def insert(db, at_seq, run_id, at, actor, kind, data):
    """Insert a well-formed event at at_seq (later events move up by one):
    its prev_hash is the hash before it and its hash is right for its
    content; nothing after it is re-hashed."""
    db.execute("UPDATE events SET seq = seq + 1000000 WHERE seq >= ?", (at_seq,))
    db.execute("UPDATE events SET seq = seq - 1000000 + 1 WHERE seq >= 1000000")
    prev = get(db, at_seq - 1, "hash") if at_seq > 1 else ZERO
    h = chain_hash(prev, at_seq, run_id, at, actor, kind, data)
    db.execute(f"INSERT INTO events ({COLS}) VALUES (?, ?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), "
               "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))", (at_seq, run_id, at, actor, kind, data, prev, h))


def swap(db, a, b, cols=("run_id", "at", "actor", "kind", "data", "prev_hash", "hash")):
    ra = db.execute(f"SELECT {', '.join(cols)} FROM events WHERE seq=?", (a,)).fetchone()
    rb = db.execute(f"SELECT {', '.join(cols)} FROM events WHERE seq=?", (b,)).fetchone()
    for c, va, vb in zip(cols, ra, rb):
        put(db, a, c, vb)
        put(db, b, c, va)
