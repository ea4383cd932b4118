#!/bin/bash
# Stand-in for the project's ./scripts/health-check.sh (Checklist Matinal check 1): asks
# the sandbox server's health checks of the api and db services; fails when one is down.
: "${SANDBOX_URL:?SANDBOX_URL is not set}"
rc=0
for s in api db; do
	curl -fsS "$SANDBOX_URL/health/$s" >/dev/null 2>&1 && echo "$s: healthy" || { echo "$s: DOWN" >&2; rc=1; }
done
exit $rc
