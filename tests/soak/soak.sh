#!/bin/bash
# make soak: the scheduler over a simulated day (1440 ticks, one a minute),
# firing an every-minute and an every-5-minutes entry, while its resident
# memory is sampled. Reported, not asserted: memory should stay flat.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RBK=${RBK:-$ROOT/build/rbk}
TICKS=${TICKS:-1440}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/rb"
cat >"$TMP/rb/soak.yaml" <<'Y'
rbk: 1
name: soak
schedule:
  - {cron: "* * * * *", overlap: allow}
  - {cron: "*/5 * * * *", timezone: Europe/Lisbon, params: {n: 5}}
params:
  n: {type: int, default: 1}
start: a
states:
  a:
    do: shell.exec
    with: {argv: [true]}
    next: done
  done: {end: success}
Y
export RBK_HOME="$TMP/home" RBK_PATH="$TMP/rb" RBK_PLUGIN_PATH="$ROOT/build/plugins"
"$RBK" scheduler --once --now 2026-11-23T00:00:00Z --ticks "$TICKS" --metrics "$TMP/m.prom" >"$TMP/log" 2>&1 &
pid=$!
samples=()
while kill -0 "$pid" 2>/dev/null; do
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	[ -n "$rss" ] && samples+=("$rss")
	sleep 0.5
done
wait "$pid"
code=$?
fired=$(grep -c " fired " "$TMP/log")
n=${#samples[@]}
first=${samples[0]:-0}
last=${samples[$((n > 0 ? n - 1 : 0))]:-0}
max=$(printf '%s\n' "${samples[@]:-0}" | sort -n | tail -1)
# Flat: the later half never above the first quarter's peak by more than 10%.
q=$(( n / 4 > 0 ? n / 4 : 1 ))
early=$(printf '%s\n' "${samples[@]:0:$q}" | sort -n | tail -1)
late=$(printf '%s\n' "${samples[@]:$((n / 2))}" | sort -n | tail -1)
echo "scheduler soak: $TICKS simulated minutes, $fired runs fired, exit $code"
echo "resident memory (KiB): first $first, last $last, max $max, peak of the first quarter $early, peak of the second half ${late:-0} ($n samples)"
if [ "${late:-0}" -le $(( early + early / 10 )) ]; then echo "memory: flat"; else echo "memory: GREW"; fi
