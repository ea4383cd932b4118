# rbk: build, test and install.
#   make            build/rbk and build/plugins/rbk-<name>.so
#   make test       every test, under AddressSanitizer and UBSan
#   make crashtest  the long crash tests (kill -9 and resume, thousands of times)
#   make bench      rbk measured side by side with its peers (bench/results.md)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install the Debian build and test dependencies

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0

LIBS     := yaml-0.1 libpcre2-8 jansson libcrypto sqlite3
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(LIBS) libgit2 libpq 2>/dev/null || echo -I/usr/include/postgresql)
PKG_LIBS   := $(shell pkg-config --libs $(LIBS) 2>/dev/null || echo -lyaml -lpcre2-8 -ljansson -lcrypto -lsqlite3)
ALL_CFLAGS  = $(CSTD) $(WARN) $(CFLAGS) -Iengine/src -Iengine/include $(PKG_CFLAGS) -DRBK_VERSION='"$(VERSION)"'
# -rdynamic: the engine's modules call the program's own functions.
LDLIBS   := -rdynamic $(PKG_LIBS) -lm -ldl

# Engine modules (base/module.h): parts whose libraries only some commands
# need, built as build/modules/rbk-NAME.so and loaded when first used.
MODULES            := store-pg gitrepo serve
MODULE_SRC_store-pg := engine/src/store/pg.c
MODULE_LIBS_store-pg := $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq)
MODULE_SRC_gitrepo  := engine/src/audit/gitrepo.c
MODULE_LIBS_gitrepo := $(shell pkg-config --libs libgit2 2>/dev/null || echo -lgit2)
MODULE_SRC_serve    := engine/src/serve/http.c engine/src/serve/assets.c
MODULE_LIBS_serve   := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd) -lpthread
MODULE_DEPS_serve   := $(wildcard engine/src/serve/ui/*)
MODULE_SRC := $(foreach m,$(MODULES),$(MODULE_SRC_$(m)))
MODULE_SO  := $(MODULES:%=build/modules/rbk-%.so)
SAN_MODULE_SO := $(MODULES:%=build/san/modules/rbk-%.so)

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ENGINE_SRC := $(filter-out $(MODULE_SRC),$(wildcard engine/src/*/*.c))
LIB_SRC    := $(filter-out engine/src/cli/main.c,$(ENGINE_SRC))
OBJ        := $(ENGINE_SRC:engine/src/%.c=build/obj/%.o)
SAN_OBJ    := $(ENGINE_SRC:engine/src/%.c=build/san/%.o)
SAN_LIB    := $(LIB_SRC:engine/src/%.c=build/san/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=build/san/tests/%)
VG_BIN     := $(UNIT_SRC:tests/unit/%.c=build/vg/tests/%)
OBJ_LIB    := $(LIB_SRC:engine/src/%.c=build/obj/%.o)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=build/san/fuzz/%)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_TIME  ?= 60
PLUGINS    := $(notdir $(wildcard plugins/*))
PLUGIN_SO  := $(PLUGINS:%=build/plugins/rbk-%.so)
TEST_PLUGINS := $(notdir $(wildcard tests/plugins/*))
TEST_PLUGIN_SO := $(TEST_PLUGINS:%=build/test-plugins/rbk-%.so)

.PHONY: all test crashtest unit install deps clean example soak demo bench fuzz valgrind man
all: build/rbk $(PLUGIN_SO) $(MODULE_SO)

build/obj/%.o: engine/src/%.c $(wildcard engine/src/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/rbk: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

.SECONDEXPANSION:
build/modules/rbk-%.so: $$(MODULE_SRC_$$*) $$(MODULE_DEPS_$$*) $(wildcard engine/src/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $(MODULE_SRC_$*) $(MODULE_LIBS_$*)

build/san/modules/rbk-%.so: $$(MODULE_SRC_$$*) $$(MODULE_DEPS_$$*) $(wildcard engine/src/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -fPIC -shared -o $@ $(MODULE_SRC_$*) $(MODULE_LIBS_$*)

# Each plugin links only the library it wraps.
PLUGIN_CFLAGS_http   := $(shell pkg-config --cflags libcurl 2>/dev/null)
PLUGIN_LIBS_http     := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
PLUGIN_CFLAGS_git    := $(shell pkg-config --cflags libgit2 2>/dev/null)
PLUGIN_LIBS_git      := $(shell pkg-config --libs libgit2 2>/dev/null || echo -lgit2)
PLUGIN_CFLAGS_sqlite := $(shell pkg-config --cflags sqlite3 2>/dev/null)
PLUGIN_LIBS_sqlite   := $(shell pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)
PLUGIN_LIBS_file     := $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

build/plugins/rbk-%.so: plugins/%/*.c engine/include/rbk/plugin.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -Iengine/include $(PLUGIN_CFLAGS_$*) -fPIC -shared -o $@ $(filter %.c,$^) $(PLUGIN_LIBS_$*)

# Plugins that exist only for the tests (never installed).
build/test-plugins/rbk-%.so: tests/plugins/%/*.c engine/include/rbk/plugin.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -Iengine/include -fPIC -shared -o $@ $(filter %.c,$^)

# The test build: the same sources under ASan and UBSan.
build/san/%.o: engine/src/%.c $(wildcard engine/src/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

build/san/rbk: $(SAN_OBJ) $(SAN_MODULE_SO)
	$(CC) $(SAN) -o $@ $(SAN_OBJ) $(LDLIBS)

# A unit test of a module's own functions links the module itself.
UNIT_MODULE_test_pgstore := store-pg
RPATH_UP1 := -Wl,-rpath,'$$ORIGIN/../modules'
RPATH_UP2 := -Wl,-rpath,'$$ORIGIN/../../modules'
build/san/tests/%: tests/unit/%.c tests/unit/t.h $(SAN_LIB) $(SAN_MODULE_SO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< $(SAN_LIB) \
	  $(if $(UNIT_MODULE_$*),build/san/modules/rbk-$(UNIT_MODULE_$*).so $(RPATH_UP1) $(MODULE_LIBS_$(UNIT_MODULE_$*))) $(LDLIBS)

# make valgrind: unit tests and command-line flows under memcheck, no sanitizers.
build/vg/tests/%: tests/unit/%.c tests/unit/t.h $(OBJ_LIB) $(MODULE_SO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(OBJ_LIB) \
	  $(if $(UNIT_MODULE_$*),build/modules/rbk-$(UNIT_MODULE_$*).so $(RPATH_UP2) $(MODULE_LIBS_$(UNIT_MODULE_$*))) $(LDLIBS)

valgrind: all $(VG_BIN) $(TEST_PLUGIN_SO)
	@eval "$$(tests/pg/cluster.sh)" && trap 'tests/pg/cluster.sh stop "$$RBK_TEST_PG_DIR"' EXIT INT TERM HUP && \
	  tests/valgrind/run.sh

# The fuzz targets, replaying the kept corpus under the test build (no libFuzzer).
build/san/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c $(SAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< tests/fuzz/driver.c $(SAN_LIB) $(LDLIBS)

# make fuzz: each target under libFuzzer (clang) for FUZZ_TIME seconds,
# seeded with tests/fuzz/corpus/NAME; new inputs go to build/fuzz/corpus-NAME
# (merge them into the kept corpus with -merge=1), crashes to
# tests/fuzz/crashes/ (each becomes a regression case in the corpus).
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(@D)
	clang $(CSTD) $(WARN) -g -O1 -Iengine/src -Iengine/include $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@mkdir -p tests/fuzz/crashes
	@for t in $(FUZZ_BIN); do name=$$(basename $$t); seeds=tests/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p build/fuzz/corpus-$$name; echo "== $$name for $(FUZZ_TIME)s"; \
	  $$t -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 -artifact_prefix=tests/fuzz/crashes/$$name- \
	    build/fuzz/corpus-$$name $$seeds 2>&1 | tail -2; done

# A throwaway PostgreSQL cluster (tests/pg/cluster.sh) serves the tests of
# the PostgreSQL store, and is removed however the run ends.
test: build/san/rbk $(UNIT_BIN) $(FUZZ_REPLAY) $(TEST_PLUGIN_SO) all
	@eval "$$(tests/pg/cluster.sh)" && trap 'tests/pg/cluster.sh stop "$$RBK_TEST_PG_DIR"' EXIT INT TERM HUP && \
	  python3 tests/run --rbk build/san/rbk --units build/san/tests

# Crash tests, long mode: thousands of kills of rbk (at every crash point, then
# at random instants), each run resumed to its end and checked. COUNT=N kills.
crashtest: all build/test-plugins/rbk-testkit.so
	@python3 tests/crash/crash.py --rbk build/rbk $(if $(COUNT),--count $(COUNT))

# Runs the disk-full runbook end to end in a sandbox of real files: old
# logs and backups are made, the clean-up removes them (docker and psql are
# stand-ins), and the run is recorded in .state/rbk.db.
EXAMPLE := .state/example
example: all
	@rm -rf $(EXAMPLE) && mkdir -p $(EXAMPLE)/logs $(EXAMPLE)/backups
	@touch -d '40 days ago' $(EXAMPLE)/logs/old.log && touch $(EXAMPLE)/logs/today.log
	@touch -d '10 days ago' $(EXAMPLE)/backups/old.tar && touch $(EXAMPLE)/backups/today.tar
	RBK_HOME=.state RBK_PATH=runbooks build/rbk run disk-full -p path=$(EXAMPLE) -p threshold=0 -p target=100 \
	  -p logs_dir=$(EXAMPLE)/logs -p backups_dir=$(EXAMPLE)/backups -p docker=true -p compress_cmd=true
	@echo "left in the sandbox:" && ls $(EXAMPLE)/logs $(EXAMPLE)/backups
	RBK_HOME=.state build/rbk history --limit 3

# A feed freeze, end to end, in a sandbox an operator can watch.
demo: all
	@tests/sandbox/demo.sh

# The scheduler's memory over a simulated day (reported, not asserted).
soak: all
	@tests/soak/soak.sh

# rbk side by side with bash, ansible-playbook and aws-local-stepfunctions
# (installed first): prints a table and writes bench/results.md. Reported,
# never asserted. The 1M-event store is generated once into bench/.cache.
bench: all
	@bench/bench.sh

# Man pages, made from the docs: rbk(1) from docs/cli.md, rbk-runbook(5)
# from docs/format.md.
MAN := build/man/rbk.1 build/man/rbk-runbook.5
man: $(MAN)
build/man/rbk.1: docs/cli.md docs/md2man.py
	@mkdir -p build/man
	python3 docs/md2man.py docs/cli.md rbk 1 "a runbook executor with a durable, auditable record" > $@
build/man/rbk-runbook.5: docs/format.md docs/md2man.py
	@mkdir -p build/man
	python3 docs/md2man.py docs/format.md rbk-runbook 5 "the rbk runbook format" > $@

install: all $(MAN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/rbk/plugins \
	  $(DESTDIR)$(PREFIX)/include/rbk $(DESTDIR)$(PREFIX)/share/doc/rbk \
	  $(DESTDIR)$(PREFIX)/share/rbk/schemas
	install -m 755 build/rbk $(DESTDIR)$(PREFIX)/bin/rbk
	install -d $(DESTDIR)$(PREFIX)/lib/rbk/modules
	install -m 644 $(MODULE_SO) $(DESTDIR)$(PREFIX)/lib/rbk/modules/
	$(if $(PLUGIN_SO),install -m 644 $(PLUGIN_SO) $(DESTDIR)$(PREFIX)/lib/rbk/plugins/)
	$(if $(wildcard engine/include/rbk/*.h),install -m 644 engine/include/rbk/*.h $(DESTDIR)$(PREFIX)/include/rbk/)
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/rbk/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 644 build/man/rbk.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 build/man/rbk-runbook.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	build/rbk completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rbk
	build/rbk completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_rbk
	cp -R docs/. $(DESTDIR)$(PREFIX)/share/doc/rbk/
	install -m 644 schemas/* $(DESTDIR)$(PREFIX)/share/rbk/schemas/
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' engine/rbk-plugin.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/rbk-plugin.pc

DEBIAN_DEPS := build-essential pkg-config libyaml-dev libsqlite3-dev libpcre2-dev \
  libcurl4-openssl-dev libgit2-dev libjansson-dev python3 python3-yaml python3-jsonschema graphviz libssl-dev \
  git clang valgrind tzdata curl procps libpq-dev postgresql faketime zsh groff-base jq sqlite3 \
  libmicrohttpd-dev chromium chromium-driver prometheus openssl
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $(DEBIAN_DEPS)

clean:
	rm -rf build
