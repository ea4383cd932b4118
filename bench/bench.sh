#!/bin/bash
# make bench: installs the peers, then measures rbk side by side with them
# (bench/bench.py) and writes bench/results.md. Never fails on a figure, nor
# on a peer that cannot be installed: that peer is reported as unavailable.
#
#   peers: bash; ansible (Debian); aws-local-stepfunctions (npm registry,
#   installed under ASL_PREFIX, outside the source tree); hyperfine and GNU
#   time (Debian) for the timing.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ASL_PREFIX=${ASL_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/rbk-bench}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi
missing=()
command -v ansible-playbook >/dev/null || missing+=(ansible)
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: installing ${missing[*]} (apt)"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
		echo "bench: apt could not install ${missing[*]}; reported as unavailable"
fi

if [ ! -f "$ASL_PREFIX/node_modules/aws-local-stepfunctions/package.json" ]; then
	if command -v npm >/dev/null; then
		echo "bench: installing aws-local-stepfunctions (npm) under $ASL_PREFIX"
		mkdir -p "$ASL_PREFIX"
		npm install --prefix "$ASL_PREFIX" --no-audit --no-fund --loglevel=error aws-local-stepfunctions >/dev/null 2>&1 ||
			echo "bench: npm could not install aws-local-stepfunctions; reported as unavailable"
	else
		echo "bench: npm is missing; aws-local-stepfunctions reported as unavailable"
	fi
fi

python3 "$ROOT/bench/bench.py" || true
exit 0
