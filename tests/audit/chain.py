"""The audit chain from outside rbk: recompute it, and tamper with copies of
a store the way an attacker with write access to rbk.db would.

The rule (schemas/store.sql, engine/src/store/store.h):
    hash = SHA-256(prev_hash || "SEQ\\nRUN_ID\\nAT\\nACTOR\\nKIND\\nDATA")
with prev_hash the previous event's hash as 64 hex digits (64 '0's for the
first event). Columns are read and written as raw bytes so that a changed
byte stays exactly that byte.
"""
import hashlib
import os
import shutil
import sqlite3

ZERO = b"0" * 64
FIELDS = ("at", "actor", "kind", "data", "run_id", "prev_hash", "hash")
COLS = "seq, run_id, at, actor, kind, data, prev_hash, hash"


def chain_hash(prev, seq, run_id, at, actor, kind, data):
    canon = b"%d\n%d\n" % (seq, run_id) + at + b"\n" + actor + b"\n" + kind + b"\n" + data
    return hashlib.sha256(prev + canon).hexdigest().encode()


def connect(path):
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.text_factory = bytes
    return db


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


def make_template(home, path):
    """A single-file copy of home/rbk.db (WAL content included) without the
    append-only triggers: those stop accidents, not attackers."""
    src = sqlite3.connect(os.path.join(home, "rbk.db"), timeout=10)
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.execute("DROP TRIGGER IF EXISTS events_no_update")
    dst.execute("DROP TRIGGER IF EXISTS events_no_delete")
    dst.commit()
    dst.close()


def fresh_copy(template, home):
    """A new store directory holding a copy of template; returns a connection."""
    os.makedirs(home)
    shutil.copyfile(template, os.path.join(home, "rbk.db"))
    return connect(os.path.join(home, "rbk.db"))


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
