#!/usr/bin/env python3
"""Stand-in for the data update job (python data/collector.py --mode=update-all
--lookback-hours=N): records its call in $SANDBOX/collector.log, then writes
fresh H4 and H1 candles for --symbols symbols (default 60) into $DB, the
database the runbook passes in the environment.

    collector.py [--symbols N] [--lookback-hours H]
"""
import os, subprocess, sys

args = sys.argv[1:]
symbols = args[args.index("--symbols") + 1] if "--symbols" in args else "60"
with open(os.path.join(os.environ["SANDBOX"], "collector.log"), "a") as f:
    f.write(" ".join(args) + f" DB={os.environ.get('DB', '')} LOOKBACK_HOURS={os.environ.get('LOOKBACK_HOURS', '')}\n")
fix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "db-restore", "sqlitefix.py")
subprocess.run([sys.executable, fix, "candles", os.environ["DB"], "--symbols", symbols, "--rows", "3",
                "--h4-age", "0.5", "--h1-age", "0.2"], check=True)
print(f"collector: {symbols} symbols updated")
