#!/bin/bash
# The console's pages in a real headless Chromium (tests/console/browser.py):
# login, a launch from the generated form, the live timeline, an approval
# through the form, hostile text kept inert. Screenshots are kept in
# build/test-artifacts/console-<store>/.
. "$(dirname "$0")/lib.bash"
export RBK_HOME=$TMP/home
export RBK_PATH=$RBK_ROOT/tests/fixtures/console
export RBK_PLUGIN_PATH=$RBK_ROOT/build/plugins:$RBK_ROOT/build/test-plugins
export TMP
fresh_store
for tool in chromium chromedriver; do
	command -v $tool >/dev/null || fail "$tool is installed (make deps)" "not found"
done
store=sqlite
on_pg && store=pg
art=$RBK_ROOT/build/test-artifacts/console-$store
rm -rf "$art"
python3 "$RBK_ROOT/tests/console/browser.py" "$RBK" "$art" 2>&1
