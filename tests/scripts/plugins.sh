#!/bin/bash
# The plugin ABI: the public header alone, and the refusals of bad plugins.
. "$(dirname "$0")/lib.bash"
INC="$RBK_ROOT/engine/include"

check "plugin.h compiles alone (-std=c11 -pedantic)" \
	cc -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c -I"$INC" - <<<'#include <rbk/plugin.h>'
check "plugin.h compiles as C++" \
	sh -c "printf '#include <rbk/plugin.h>\nint main(void){return 0;}\n' | c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only -x c++ -I'$INC' -"

# plugin NAME BODY: build rbk-NAME.so from a C body into $TMP/p.
mkdir -p "$TMP/p"
plugin() {
	cat >"$TMP/$1.c" <<C
#include <rbk/plugin.h>
static int run(rbk_call *c, const rbk_value *a) { (void)c; (void)a; return 0; }
static const rbk_param_decl params[] = {{"x", RBK_TYPE_INT, 1, 0, "a number"}, {0, 0, 0, 0, 0}};
static const rbk_action actions[] = {{"act", "does nothing", params, 0, 1, run, 0, 0}};
$2
C
	cc -std=c11 -Wall -Wextra -Werror -Wno-unused -fPIC -shared -I"$INC" -o "$TMP/p/rbk-$1.so" "$TMP/$1.c"
}
GOOD='RBK_PLUGIN_DECLARE();
static const rbk_plugin p = {"NAME", "1.2.3", actions, 1};
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out) { (void)h; *out = &p; return 0; }'

plugin good "${GOOD//NAME/good}"
out=$("$RBK" plugins "$TMP/p/rbk-good.so" 2>&1)
[[ $? == 0 && $out == *"good.act: does nothing [idempotent]"* && $out == *"x                int      required"* ]] \
	&& ok "a good plugin is listed with its action and params" || fail "good plugin" "$out"

plugin noinit 'RBK_PLUGIN_DECLARE();'
out=$("$RBK" plugins "$TMP/p/rbk-noinit.so" 2>&1)
[[ $? == 1 && $out == *"rbk-noinit.so: error: plugin refused: no rbk_plugin_init function"* ]] \
	&& ok "a plugin without the init symbol is refused, naming the file" || fail "noinit" "$out"

plugin noabi 'int rbk_plugin_init(void); int rbk_plugin_init(void) { return 0; }'
out=$("$RBK" plugins "$TMP/p/rbk-noabi.so" 2>&1)
[[ $? == 1 && $out == *"rbk-noabi.so: error: plugin refused: no rbk_plugin_abi symbol"* ]] \
	&& ok "a plugin without the ABI symbol is refused" || fail "noabi" "$out"

plugin abi2 '#undef RBK_PLUGIN_ABI_MAJOR
#define RBK_PLUGIN_ABI_MAJOR 2
RBK_PLUGIN_DECLARE();
int rbk_plugin_init(void); int rbk_plugin_init(void) { *(volatile int *)0 = 1; return 0; }'
out=$("$RBK" plugins "$TMP/p/rbk-abi2.so" 2>&1)
[[ $? == 1 && $out == *"plugin refused: built for plugin ABI 2."*", this rbk speaks 1."* ]] \
	&& ok "a plugin of another ABI major is refused before init is called" || fail "abi2" "$out"

plugin badsize 'const rbk_plugin_abi_info rbk_plugin_abi = {RBK_PLUGIN_ABI_MAJOR, 0, 8, 8, 8, 8, 8};
int rbk_plugin_init(void); int rbk_plugin_init(void) { *(volatile int *)0 = 1; return 0; }'
out=$("$RBK" plugins "$TMP/p/rbk-badsize.so" 2>&1)
[[ $? == 1 && $out == *"plugin refused: struct sizes differ"* ]] \
	&& ok "a plugin with other struct sizes is refused before init is called" || fail "badsize" "$out"

plugin initfails 'RBK_PLUGIN_DECLARE();
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out);
int rbk_plugin_init(const rbk_host *h, const rbk_plugin **out) { (void)h; (void)out; return -7; }'
out=$("$RBK" plugins "$TMP/p/rbk-initfails.so" 2>&1)
[[ $? == 1 && $out == *"rbk-initfails.so: error: plugin refused: rbk_plugin_init failed (returned -7)"* ]] \
	&& ok "a plugin whose init fails is refused" || fail "initfails" "$out"

plugin dup "${GOOD//NAME/good}"
out=$("$RBK" plugins "$TMP/p/rbk-good.so" "$TMP/p/rbk-dup.so" 2>&1)
[[ $? == 1 && $out == *"rbk-dup.so: error: plugin refused: action 'good.act' is already provided by $TMP/p/rbk-good.so"* ]] \
	&& ok "a duplicate action name is refused, naming both files" || fail "dup" "$out"

echo 'not an ELF file' >"$TMP/p/rbk-junk.so"
out=$("$RBK" plugins "$TMP/p/rbk-junk.so" 2>&1)
[[ $? == 1 && $out == *"rbk-junk.so: error: plugin refused: cannot load"* ]] \
	&& ok "a file that is not a shared object is refused" || fail "junk" "$out"

# Through the plugin path: validate uses the good plugin's param table.
mkdir -p "$TMP/only" && cp "$TMP/p/rbk-good.so" "$TMP/only/"
cat >"$TMP/rb.yaml" <<'Y'
rbk: 1
name: uses-good
start: a
states:
  a:
    do: good.act
    with: {x: "five", y: 1}
    next: b
  b:
    do: good.nope
    next: done
  done: {end: success}
Y
out=$(RBK_PLUGIN_PATH="$TMP/only" "$RBK" validate "$TMP/rb.yaml" 2>&1)
want="$TMP/rb.yaml:7:15: error: param 'x' of good.act must be an int, not a string
$TMP/rb.yaml:7:23: error: good.act has no param 'y'
$TMP/rb.yaml:10:9: error: unknown action 'good.nope' (see 'rbk plugins')"
[[ $out == "$want" ]] && ok "validate checks actions and params against the loaded plugins" || fail "validate with plugins" "$out"
