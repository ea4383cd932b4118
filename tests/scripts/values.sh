#!/bin/bash
# Reaching into values (docs/format.md, "Reaching into values"): members and
# items of step outputs, variables and params, by .name, ['name'] and
# [index], in set, guards and templates; what is not there is an error
# naming the path and its column, caught by default().
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
fresh_store
t() { if [[ $1 == 0 ]]; then ok "$2"; else fail "$2" "$3"; fi; }
vars() { "$RBK" log "$1" --json 2>/dev/null | python3 -c 'import json,sys
v = {}
for e in map(json.loads, sys.stdin):
    if e["kind"] == "vars_set": v.update(e["data"]["vars"])
print(json.dumps(v, sort_keys=True, separators=(",", ":")))'; }

cat >"$TMP/v.yaml" <<'Y'
rbk: 1
name: values
params:
  i: {type: int, default: 1}
  pick: {type: string, default: hosts}
vars:
  cfg: "{{ json('{\"limits\": {\"max\": 5}, \"hosts\": [\"a\", \"b\"], \"content-type\": \"x\"}', '$') }}"
start: q
states:
  q:
    do: shell.exec
    with: {argv: [/bin/sh, -c, "echo '{\"rows\":[{\"h4_age_s\":12},{\"h4_age_s\":99}]}'"]}
    set:
      age: json(steps.q.stdout, '$').rows[0].h4_age_s
      last: json(steps.q.stdout, '$')['rows'][params.i].h4_age_s
      max: vars.cfg.limits.max
      host: vars.cfg.hosts[params.i]
      by_param: vars.cfg[params.pick][0]
      odd: vars.cfg['content-type']
      none: default(vars.cfg.hosts[7], 'none')
    next:
      - if: vars.cfg.limits.max > 4 && vars.host == 'b'
        to: say
      - to: failed
  say:
    do: shell.exec
    with: {argv: [/bin/echo, "first host {{ vars.cfg.hosts[0] }}, limit {{ vars.cfg.limits.max }}"]}
    next: [{to: done}]
  done: {end: success}
  failed: {end: failure}
Y
"$RBK" run "$TMP/v.yaml" >"$TMP/r1.out" 2>&1
rc=$?
[[ $rc == 0 && $(vars 1) == '{"age":12,"by_param":"a","cfg":{"content-type":"x","hosts":["a","b"],"limits":{"max":5}},"host":"b","last":99,"max":5,"none":"none","odd":"x"}' ]]
t $? "members and items of an output, a variable and by a param's value, in set and guards" "exit $rc; $(vars 1); $(tail -3 "$TMP/r1.out")"
"$RBK" log 1 --json | grep -q '"stdout":"first host a, limit 5\\n"'
t $? "in templates too" "$("$RBK" log 1 --json | grep -o '"stdout":"[^"]*"' | tail -1)"
OUT=$("$RBK" replay 1 2>&1)
[[ $? == 0 && $OUT == *", 0 divergences"* ]]
t $? "a run that reaches into values replays with no divergence" "$OUT"

bad_run() { # NAME SED WANT: the run fails with WANT
	sed "$2" "$TMP/v.yaml" >"$TMP/b.yaml"
	"$RBK" run "$TMP/b.yaml" >"$TMP/b.out" 2>&1
	local rc=$?
	[[ $rc == 1 && $(cat "$TMP/b.out") == *"$3"* ]]
	t $? "$1" "exit $rc; $(tail -2 "$TMP/b.out")"
}
bad_run "an index out of range fails the step, naming the path, its size and the column" \
	's/host: vars.cfg.hosts\[params.i\]/host: vars.cfg.hosts[params.i + 4]/' \
	"b.yaml:17:27: no value at 'vars.cfg.hosts[...]': index 5 is out of range ('vars.cfg.hosts' has 2 items)"
bad_run "a missing key names the path and where it stops" 's/max: vars.cfg.limits.max$/max: vars.cfg.limits.maxx/' \
	"no value at 'vars.cfg.limits.maxx': 'vars.cfg.limits' has no key 'maxx'"
bad_run "a missing member after an index too" "s/age: json(steps.q.stdout, '\\$').rows\\[0\\].h4_age_s/age: json(steps.q.stdout, '\$').rows[0].h1_age_s/" \
	"no value at 'json(...).rows[0].h1_age_s': 'json(...).rows[0]' has no key 'h1_age_s'"
bad_run "picking an item by a string is a type error, not an absent value" "s/odd: vars.cfg\\['content-type'\\]/odd: default(vars.cfg.hosts['x'], 1)/" \
	"'vars.cfg.hosts' is a list: its items are picked by an int, not by a string"
sed 's/max: vars.cfg.limits.max$/max: vars.nope.limits/' "$TMP/v.yaml" >"$TMP/c.yaml"
OUT=$("$RBK" validate "$TMP/c.yaml" 2>&1)
[[ $? == 2 && $OUT == *"unknown name 'vars.nope.limits': no variable 'nope'"* ]]
t $? "the validator still checks the name a path starts from" "$OUT"
sed 's/max: vars.cfg.limits.max$/max: vars.cfg.hosts[/' "$TMP/v.yaml" >"$TMP/c.yaml"
OUT=$("$RBK" validate "$TMP/c.yaml" 2>&1)
[[ $? == 2 && $OUT == *"c.yaml:16:27: error: set: unexpected end of expression"* ]]
t $? "an unclosed [ is a syntax error with its place" "$OUT"
