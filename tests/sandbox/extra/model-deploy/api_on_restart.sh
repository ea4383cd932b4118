#!/bin/bash
# Installed as $SANDBOX/docker/api.on_restart (model-deploy, model-rollback,
# model-performance tests): each `docker compose restart api` "loads" the
# model at $SANDBOX/models/rf_m1.pkl: its content is appended to
# $SANDBOX/api_loaded.log, and the sandbox server's /health/api turns
# "degraded" (503) when the content says "degrades", else "healthy" (200).
: "${SANDBOX:?}"
content=$(cat "$SANDBOX/models/rf_m1.pkl" 2>/dev/null || echo "(no model)")
echo "$content" >>"$SANDBOX/api_loaded.log"
case $content in *degrades*) h=degraded ;; *) h=healthy ;; esac
"$(command -v /usr/bin/python3 || command -v python3)" - "$SANDBOX/state.json" "$h" <<'PY'
import json, os, sys
p, h = sys.argv[1], sys.argv[2]
s = json.load(open(p))
s.setdefault("health", {})["api"] = h
json.dump(s, open(p + ".hook", "w"), indent=1)
os.replace(p + ".hook", p)
PY
