#!/usr/bin/env python3
"""Real SQLite fixtures for the backtest-checklist runbook test.

  fixture.py candles DB [KEY=VALUE...]
      ohlcv_h4 (timestamps in ms) and ohlcv_h1 (timestamps in s), with an index
      on (symbol, timestamp), 20 candles per symbol and table. Keys:
        symbols=N       symbols SYM00USDT.. (default 60)
        h4=today|yesterday|H  newest H4 candle: 00:00 UTC today (default), 18:00 UTC
                        yesterday (always yesterday's date, whatever the hour), or H hours ago
        h1=H            newest H1 candle H hours ago (default 0.5)
        stale=SYM       this symbol's candles are 30 h older (repeatable)
        gap=SYM:TF:N    remove N consecutive candles of SYM on TF (h4 or h1) in the
                        middle of its history (repeatable)
  fixture.py side DB sentiment=today|yesterday|H|none macro=today|yesterday|H|none
      sentimento_mercado (timestamp in Unix s) and macro_data (timestamp as an
      SQLite date text), one row H hours ago (today: now; yesterday: 18:00 UTC
      yesterday), or no table
  fixture.py max DB TABLE         prints MAX(timestamp) of TABLE
  fixture.py pad DB MB            add a table of MB MiB of blobs
  fixture.py drop DB TABLE        drop TABLE (to leave free pages for VACUUM)
  fixture.py batch                one command per line of standard input, in one
                                  process ("candles DB ...", "side DB ...", ...)
"""
import sqlite3, sys, time


def today_start(now):
    return int(now) - int(now) % 86400


def yesterday_evening(now):
    """18:00 UTC yesterday: yesterday's date at any hour of today, unlike
    "30 hours ago", which is two days back in the first hours after midnight."""
    return today_start(now) - 6 * 3600


def candles(db, args):
    now = time.time()
    opts = {"symbols": "60", "h4": "today", "h1": "0.5"}
    stale, gaps = set(), []
    for a in args:
        k, v = a.split("=", 1)
        if k == "stale": stale.add(v)
        elif k == "gap": gaps.append(v.split(":"))
        else: opts[k] = v
    h4_newest = (today_start(now) if opts["h4"] == "today" else yesterday_evening(now) if opts["h4"] == "yesterday"
                 else now - float(opts["h4"]) * 3600)
    h1_newest = now - float(opts["h1"]) * 3600
    c = sqlite3.connect(db)
    for table, newest, step, scale in (("ohlcv_h4", h4_newest, 14400, 1000), ("ohlcv_h1", h1_newest, 3600, 1)):
        c.execute(f"create table if not exists {table} (symbol text not null, timestamp integer not null, "
                  "open real, high real, low real, close real, volume real)")
        c.execute(f"create index if not exists {table}_symbol_ts on {table}(symbol, timestamp)")
        rows = []
        for i in range(int(opts["symbols"])):
            sym = f"SYM{i:02d}USDT"
            drop = set()
            for g in gaps:
                if g[0] == sym and "ohlcv_" + g[1] == table:
                    drop |= set(range(8, 8 + int(g[2])))
            shift = 30 * 3600 if sym in stale else 0
            for k in range(20):
                if k not in drop:
                    rows.append((sym, int((newest - shift - k * step) * scale), 1.0, 1.1, 0.9, 1.05, 100.0))
        c.executemany(f"insert into {table} values (?,?,?,?,?,?,?)", rows)
    c.commit()
    c.close()


def side(db, args):
    now = time.time()
    c = sqlite3.connect(db)
    for a in args:
        k, v = a.split("=", 1)
        if v == "none":
            continue
        t = now if v == "today" else yesterday_evening(now) if v == "yesterday" else now - float(v) * 3600
        if k == "sentiment":
            c.execute("create table if not exists sentimento_mercado (timestamp integer, score real)")
            c.execute("insert into sentimento_mercado values (?, 0.5)", (int(t),))
        elif k == "macro":
            c.execute("create table if not exists macro_data (series text, date text, value real, timestamp text)")
            c.execute("insert into macro_data values ('DGS10', date(?, 'unixepoch', '-1 day'), 4.1, datetime(?, 'unixepoch'))",
                      (int(t), int(t)))
        else:
            sys.exit(f"side: unknown key {k}")
    c.commit()
    c.close()


def main(argv):
    if argv[1:2] == ["batch"]:
        for line in sys.stdin:
            if line.split():
                main([argv[0]] + line.split())
        return
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, db, a = argv[1], argv[2], argv[3:]
    if cmd == "candles": candles(db, a)
    elif cmd == "side": side(db, a)
    elif cmd == "max":
        c = sqlite3.connect(db)
        print(c.execute(f"select max(timestamp) from {a[0]}").fetchone()[0])
    elif cmd == "pad":
        c = sqlite3.connect(db)
        c.execute("create table pad (b blob)")
        c.executemany("insert into pad values (randomblob(1048576))", [()] * int(a[0]))
        c.commit()
        c.close()
    elif cmd == "drop":
        c = sqlite3.connect(db)
        c.execute(f"drop table {a[0]}")
        c.commit()
        c.close()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
