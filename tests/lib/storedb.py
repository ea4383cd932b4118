"""Read (and, for a few tests, write) rbk's store from a test, whichever
backend it is: the tests' stand-in for `sqlite3.connect(HOME/rbk.db)`.

    import storedb
    db = storedb.connect()                  # RBK_STORE, else $RBK_HOME/rbk.db
    db = storedb.connect(home)              # RBK_STORE, else HOME/rbk.db
    db = storedb.connect(missing_ok=True)   # None while the store does not exist
    db.execute("select status from runs where id=?", (1,)).fetchone()

The store is chosen as rbk chooses it (docs/cli.md): $RBK_STORE when set
(`sqlite:PATH`, or a PostgreSQL URI), else HOME/rbk.db with HOME the
argument, else $RBK_HOME. SQLite is python's sqlite3 itself. PostgreSQL is
psql (standard library only): each statement runs as
    SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM (QUERY) t
and comes back as JSON, so integers stay ints, NULL is None, and each row
keeps its column order. `?` placeholders become quoted literals, and the
SQLite forms the tests use are translated:
    json_extract(COL, '$.KEY')  ->  (COL::json->>'KEY')
Statements that are not queries (insert, update, create ...) run as they
are; commit() is a no-op (psql commits each statement). An INSERT with
RETURNING gives its rows.

For tests with several homes: fresh_store() makes one more empty store on
the run's backend (PostgreSQL: a schema, its URL for RBK_STORE and
connect(store=...); SQLite: None, a new home is a new store), drop_store()
drops it. unprotect(db) lets UPDATE and DELETE through on events, for the
tests that tamper with the chain.
"""
import itertools, json, os, re, sqlite3, subprocess

__all__ = ["connect", "Error", "is_pg", "url", "unprotect", "fresh_store", "drop_store", "timeline"]


class Error(Exception):
    """A statement PostgreSQL refused (psql's message)."""


def url():
    """The store URL in force: $RBK_STORE, or None (SQLite in a home)."""
    u = os.environ.get("RBK_STORE", "")
    return u or None


def is_pg(u=None):
    u = url() if u is None else u
    return bool(u) and (u.startswith("postgresql:") or u.startswith("postgres:"))


def connect(home=None, timeout=10, missing_ok=False, store=None):
    """The store: `store` (a URL) when given, else $RBK_STORE, else
    HOME/rbk.db (home, else $RBK_HOME). missing_ok: None when it does not
    exist yet (no file; no rbk tables in the schema)."""
    u = store or url()
    if is_pg(u):
        db = PgStore(u)
        if missing_ok and not db.exists():
            return None
        return db
    if u and u.startswith("sqlite:"):
        path = u[len("sqlite:"):]
    else:
        h = home or os.environ.get("RBK_HOME")
        if not h:
            raise Error("storedb: no store: RBK_STORE and RBK_HOME unset, and no home given")
        path = os.path.join(h, "rbk.db")
    if missing_ok and not os.path.exists(path):
        return None
    return sqlite3.connect(path, timeout=timeout)


_stores = itertools.count(1)


def fresh_store():
    """A new empty store for one more home, on the backend of the test run:
    on PostgreSQL (RBK_STORE a PostgreSQL URI, set by tests/run with
    RBK_TEST_PG and RBK_TEST_SCHEMA) a new schema, whose URL is returned,
    to be given as RBK_STORE to rbk and as store= to connect(); on SQLite
    None (a new home is a new store)."""
    if not is_pg():
        return None
    base, prefix = os.environ.get("RBK_TEST_PG"), os.environ.get("RBK_TEST_SCHEMA")
    if not base or not prefix:
        raise Error("storedb: RBK_STORE is PostgreSQL but RBK_TEST_PG or RBK_TEST_SCHEMA is unset")
    schema = f"{prefix}_{os.getpid()}_{next(_stores)}"
    PgStore(base).execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}&options=-csearch_path%3D{schema}"


def drop_store(store):
    """Drop a store fresh_store made (None: nothing to do)."""
    m = re.search(r"search_path%3D([A-Za-z0-9_]+)", store or "")
    if m and os.environ.get("RBK_TEST_PG"):
        PgStore(os.environ["RBK_TEST_PG"]).execute(f'DROP SCHEMA IF EXISTS "{m[1]}" CASCADE')


def timeline(db, run=None):
    """A run's events (every run's when run is None) as rbk log shows them:
    (seq, run_id, at, kind, data as a dict), each batch event of pure events
    (kind "batch") unpacked into the events it holds, which share its seq."""
    q = "select seq, run_id, at, kind, data from events" + (" where run_id=?" if run else "") + " order by seq"
    out = []
    for seq, rid, at, kind, data in db.execute(q, (run,) if run else ()):
        d = json.loads(data)
        if kind == "batch":
            out += [(seq, rid, at, e["kind"], e["data"]) for e in d["events"]]
        else:
            out.append((seq, rid, at, kind, d))
    return out


def unprotect(db):
    """Let UPDATE and DELETE through on events, as someone with write access
    to the store could: SQLite's append-only triggers are dropped,
    PostgreSQL's disabled."""
    if isinstance(db, PgStore):
        db.execute("ALTER TABLE events DISABLE TRIGGER USER")
    else:
        db.execute("DROP TRIGGER IF EXISTS events_no_update")
        db.execute("DROP TRIGGER IF EXISTS events_no_delete")


# ---- PostgreSQL through psql ---------------------------------------------------------

def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"  # as sqlite3 binds it
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise Error(f"storedb: cannot bind {v!r}")
        return repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "'\\x" + bytes(v).hex() + "'::bytea"
    s = str(v)
    if "\0" in s:
        raise Error("storedb: a NUL byte cannot be bound on PostgreSQL")
    return "'" + s.replace("'", "''") + "'"


def bind(sql, params):
    """sql with each ? outside quotes and comments replaced by a literal."""
    params = list(params)
    out, i, n, k = [], 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif c == "?":
            if k >= len(params):
                raise Error(f"storedb: more ? than the {len(params)} parameter(s) given: {sql}")
            out.append(literal(params[k]))
            k += 1
            i += 1
        else:
            out.append(c)
            i += 1
    if k != len(params):
        raise Error(f"storedb: {len(params)} parameter(s) for {k} ?: {sql}")
    return "".join(out)


JSON_EXTRACT = re.compile(r"json_extract\(\s*([A-Za-z_][A-Za-z_0-9.]*)\s*,\s*'\$\.([A-Za-z_][A-Za-z_0-9]*)'\s*\)")


def translate(sql):
    return JSON_EXTRACT.sub(lambda m: f"({m[1]}::json->>'{m[2]}')", sql)


class Cursor:
    def __init__(self, rows, names):
        self._rows = rows
        self._i = 0
        self.description = [(n, None, None, None, None, None, None) for n in names] if names else None
        self.rowcount = len(rows)
        self.lastrowid = None

    def fetchone(self):
        if self._i >= len(self._rows):
            return None
        r = self._rows[self._i]
        self._i += 1
        return r

    def fetchall(self):
        r = self._rows[self._i:]
        self._i = len(self._rows)
        return r

    def fetchmany(self, size=1):
        r = self._rows[self._i:self._i + size]
        self._i += len(r)
        return r

    def __iter__(self):
        while True:
            r = self.fetchone()
            if r is None:
                return
            yield r


class PgStore:
    def __init__(self, u):
        self.url = u

    def _psql(self, sql):
        p = subprocess.run(["psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url],
                           input=sql, capture_output=True, text=True)
        if p.returncode != 0:
            raise Error(p.stderr.strip() or f"psql exit {p.returncode}")
        return p.stdout

    def exists(self):
        return self._psql("SELECT to_regclass('schema_version') IS NOT NULL;\n").strip() == "t"

    def execute(self, sql, params=()):
        q = bind(translate(sql), params).strip().rstrip(";").strip()
        head = q.split(None, 1)[0].lower() if q else ""
        if head in ("select", "with", "values", "table"):
            wrapped = f"SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM ({q}) t;\n"
        elif head in ("insert", "update", "delete") and re.search(r"\breturning\b", q, re.I):
            wrapped = f"WITH t AS ({q}) SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM t;\n"
        else:
            self._psql(q + ";\n")
            return Cursor([], None)
        text = self._psql(wrapped).strip()
        data = json.loads(text or "[]", object_pairs_hook=lambda pairs: pairs)
        names = [k for k, _ in data[0]] if data else None
        return Cursor([tuple(v for _, v in r) for r in data], names)

    def executemany(self, sql, seq):
        for params in seq:
            self.execute(sql, params)

    def executescript(self, sql):
        self._psql(sql)

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
