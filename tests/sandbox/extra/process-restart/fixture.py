#!/usr/bin/env python3
"""Fixtures for the tests of process-restart, heartbeat-timeout and
health-checks: the bot's SQLite state and its local market history.
    fixture.py state DB SYMBOL:QTY[:PRICE]...   positions (reason ENTRY_SIGNAL) and 2 open orders
    fixture.py market DB AGE_S [SYMBOL...]      candles(symbol, ts, close), 1 min apart, the newest AGE_S old
    fixture.py query DB SQL                     print the rows, one per line"""
import sqlite3, sys, time
cmd, path = sys.argv[1], sys.argv[2]
db = sqlite3.connect(path)
if cmd == "state":
    db.executescript("""create table positions(symbol text unique, qty real, entry_price real, reason_code text);
        create table orders(id integer primary key, symbol text, side text, qty real, status text);
        insert into orders(symbol, side, qty, status) values ('BTCUSDT', 'sell', 0.5, 'open'), ('BTCUSDT', 'sell', 0.5, 'open'),
            ('ETHUSDT', 'buy', 1, 'filled');""")
    for spec in sys.argv[3:]:
        p = spec.split(":")
        db.execute("insert into positions values (?, ?, ?, 'ENTRY_SIGNAL')", (p[0], float(p[1]), float(p[2]) if len(p) > 2 else None))
elif cmd == "market":
    last = int(time.time()) - int(sys.argv[3])
    db.execute("create table candles(symbol text, ts integer, close real)")
    for sym in sys.argv[4:] or ["BTCUSDT", "ETHUSDT"]:
        for i in range(120):
            db.execute("insert into candles values (?, ?, 1.0)", (sym, last - 60 * i))
elif cmd == "query":
    for row in db.execute(sys.argv[3]):
        print(row)
db.commit()
