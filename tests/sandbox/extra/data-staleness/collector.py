#!/usr/bin/env python3
"""Stand-in for the data update job of data-staleness's test
(python data/collector.py --mode=update --symbols=BTCUSDT,ETHUSDT): records
its call in $SANDBOX/collector.log, then writes a fresh H4 and H1 candle
(timestamp: now, Unix seconds) for each symbol of --symbols into $DB, the
database the runbook passes in the environment. $SANDBOX/collector.mode
changes what it does: "fail" exits 1 (the update fails), "noop" exits 0
having written nothing (the update "succeeds" but the data stays stale).

    collector.py --mode=update --symbols=SYM1,SYM2,...
"""
import os, sqlite3, sys, time

sandbox = os.environ["SANDBOX"]
args = sys.argv[1:]
with open(os.path.join(sandbox, "collector.log"), "a") as f:
    f.write(" ".join(args) + f" DB={os.environ.get('DB', '')}\n")
try:
    mode = open(os.path.join(sandbox, "collector.mode")).read().strip()
except FileNotFoundError:
    mode = ""
if mode == "fail":
    print("collector: binance returned HTTP 418 (IP banned)", file=sys.stderr)
    sys.exit(1)
symbols = [s for a in args if a.startswith("--symbols=") for s in a.split("=", 1)[1].split(",") if s]
if mode != "noop":
    now = int(time.time())
    db = sqlite3.connect(os.environ["DB"])
    for table in ("ohlcv_h4", "ohlcv_h1"):
        db.executemany(f"insert into {table} values (?,?,?,?,?,?,?)", [(s, now, 1, 1, 1, 1, 1) for s in symbols])
    db.commit()
print(f"collector: {0 if mode == 'noop' else len(symbols)} symbols updated")
