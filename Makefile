# The two commands the README leads with: `make run` and `make test`.
# Each installs missing dependencies (scripts/install-deps) and builds first.

BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
RELEASE_BUILD ?= build-release
FUZZ_TIME  ?= 300

.PHONY: run test build build-test fuzz bench deps clean

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) -Dtests=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Foreground daemon on the embedded default configuration; state under ./var/.
run: build
	./$(BUILD)/src/daemon/sluiced

$(TEST_BUILD)/build.ninja: | deps
	meson setup $(TEST_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build-test: deps $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)

$(FUZZ_BUILD)/build.ninja: | deps
	CC=clang-14 meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

$(RELEASE_BUILD)/build.ninja: | deps
	meson setup $(RELEASE_BUILD) -Dbuildtype=release -Dtests=false

# Every test layer; closes with "N passed, N failed" and fails on any failure. The -O3
# release build is compiled too: its warnings (-Werror) differ from the debug build's.
test: build-test $(FUZZ_BUILD)/build.ninja $(RELEASE_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	ninja -C $(RELEASE_BUILD)
	./scripts/run-tests $(TEST_BUILD) $(FUZZ_BUILD)

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	./scripts/fuzz $(FUZZ_BUILD) $(FUZZ_TIME)

bench: build
	./bench/run

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD) $(RELEASE_BUILD)
