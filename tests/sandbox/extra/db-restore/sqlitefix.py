#!/usr/bin/env python3
"""Real SQLite fixtures for the db-restore, db-corruption, dr-restore and
backup-verification runbook tests.

  sqlitefix.py candles DB [--symbols N] [--rows K] [--h4-age H] [--h1-age H] [--seconds]
      ohlcv_h4 / ohlcv_h1 (symbol, timestamp, open, high, low, close, volume)
      with an index on (symbol, timestamp), and sentimento_mercado: K rows
      per symbol per table, the newest H hours old (timestamps in ms, or in
      s with --seconds). Appends when the tables exist.
  sqlitefix.py positions DB SYMBOL:QTY:PRICE...
      the bot's state table positions(symbol, qty, entry_price, reason_code)
  sqlitefix.py backup DB DIR HOURS_AGO
      a consistent copy DIR/<basename>.<YYYYmmddTHHMMSSZ>.bak (sqlite.backup's
      naming), stamped HOURS_AGO hours ago; prints its path
  sqlitefix.py corrupt FILE
      overwrite 8 KiB in the middle of FILE; fails unless integrity_check
      then reports problems
  sqlitefix.py corrupt-index DB
      damage one leaf page of an index (a key changed): "row N missing from
      index", which REINDEX repairs
  sqlitefix.py check DB           prints "ok" or the first problem
  sqlitefix.py query DB SQL       prints each row as JSON
"""
import json, os, sqlite3, sys, time


def candles(db, args):
    symbols, rows, h4_age, h1_age, scale = 60, 20, 1.0, 0.5, 1000
    it = iter(args)
    for a in it:
        if a == "--symbols": symbols = int(next(it))
        elif a == "--rows": rows = int(next(it))
        elif a == "--h4-age": h4_age = float(next(it))
        elif a == "--h1-age": h1_age = float(next(it))
        elif a == "--seconds": scale = 1
        else: sys.exit(f"candles: unknown argument {a}")
    c = sqlite3.connect(db)
    now = time.time()
    for table, step_h, age in (("ohlcv_h4", 4, h4_age), ("ohlcv_h1", 1, h1_age)):
        c.execute(f"create table if not exists {table} (symbol text not null, timestamp integer not null, "
                  "open real, high real, low real, close real, volume real)")
        c.execute(f"create index if not exists {table}_symbol_ts on {table}(symbol, timestamp)")
        c.executemany(f"insert into {table} values (?,?,?,?,?,?,?)",
                      [(f"SYM{i:02d}USDT", int((now - (age + k * step_h) * 3600) * scale), 1.0, 1.1, 0.9, 1.05, 100.0)
                       for i in range(symbols) for k in range(rows)])
    c.execute("create table if not exists sentimento_mercado (timestamp integer, score real)")
    c.execute("insert into sentimento_mercado values (?, ?)", (int(now), 0.5))
    c.commit()
    c.close()


def positions(db, specs):
    c = sqlite3.connect(db)
    c.execute("create table if not exists positions (symbol text primary key, qty real not null, "
              "entry_price real, reason_code text)")
    for s in specs:
        sym, qty, price = s.split(":")
        c.execute("insert into positions values (?, ?, ?, 'ENTRY_SIGNAL')", (sym, float(qty), float(price)))
    c.commit()
    c.close()


def backup(db, d, hours_ago):
    t = time.time() - float(hours_ago) * 3600
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{os.path.basename(db)}.{stamp}.bak")
    src, dst = sqlite3.connect(db), sqlite3.connect(path)
    src.backup(dst)
    dst.execute("pragma journal_mode=delete")
    src.close()
    dst.close()
    os.utime(path, (t, t))
    print(path)


def problems(db):
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = c.execute("pragma integrity_check").fetchall()
        c.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    return None if rows == [("ok",)] else rows[0][0].splitlines()[-1]


def corrupt(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(b"\xde\xad\xbe\xef" * 2048)
    if problems(path) is None:
        sys.exit(f"corrupt: {path} still passes its integrity check")


def corrupt_index(db):
    c = sqlite3.connect(db)
    ps = c.execute("pragma page_size").fetchone()[0]
    n = c.execute("pragma page_count").fetchone()[0]
    c.close()
    data = bytearray(open(db, "rb").read())
    leaves = [p for p in range(2, n + 1) if data[(p - 1) * ps] == 0x0A]  # index leaf pages
    if not leaves:
        sys.exit("corrupt-index: no index leaf page")
    off = (leaves[len(leaves) // 2] - 1) * ps
    data[off:off + ps] = data[off:off + ps].replace(b"SYM", b"SYN")
    open(db, "wb").write(data)
    why = problems(db)
    if why is None or "missing from index" not in why:
        sys.exit(f"corrupt-index: unexpected result {why}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "candles": candles(a[0], a[1:])
    elif cmd == "positions": positions(a[0], a[1:])
    elif cmd == "backup": backup(a[0], a[1], a[2])
    elif cmd == "corrupt": corrupt(a[0])
    elif cmd == "corrupt-index": corrupt_index(a[0])
    elif cmd == "check": print(problems(a[0]) or "ok")
    elif cmd == "query":
        c = sqlite3.connect(f"file:{a[0]}?mode=ro", uri=True)
        for row in c.execute(a[1]):
            print(json.dumps(list(row)))
    else:
        sys.exit(__doc__)


main()
