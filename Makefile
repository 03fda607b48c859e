# millrace build. `make` builds the release binary; `make test` builds with ASan+UBSan and runs
# every test; `make demo` runs the simulated plant; `make bench` runs the benchmarks.
# Both `make test` and `make demo` first install missing Debian/npm packages (scripts/install-deps.sh).

CC      ?= cc
BUILD   ?= build
PKGS    := libuv yaml-0.1 jansson libmodbus libprotobuf-c libpq zlib libdeflate libcurl openssl rdkafka \
           libmosquitto
# libmosquitto: the mqtt output publishes with it (the mqtt input has its own client); unit tests
# and the benchmarks also use it as an independent MQTT peer (publisher, subscriber).
# Only the benchmarks link KissFFT and libmicrohttpd: the peers our own FFT (src/analytics/fft.c)
# and HTTP server (src/web/http_server.c) are measured against.
BENCH_PKGS := kissfft-float libmicrohttpd
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN    := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wno-format-nonliteral -Werror
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE -DMR_VERSION='"$(VERSION)"'
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -lm

# Modes: release (optimised) and asan (AddressSanitizer + UndefinedBehaviorSanitizer).
MODE ?= release
ifeq ($(MODE),asan)
  MODE_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  MODE_LDFLAGS := -fsanitize=address,undefined
else
  MODE_CFLAGS := -O2 -g
  MODE_LDFLAGS :=
endif
CFLAGS  ?=
CFLAGS  += $(WARN) $(MODE_CFLAGS) $(PKG_CFLAGS)
LDFLAGS += $(MODE_LDFLAGS)

O := $(BUILD)/$(MODE)

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/*'))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_SUPPORT := $(sort $(wildcard tests/unit/support/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

# Code generated at build time: protoc-c turns each src/**/*.proto into $(O)/gen/NAME.pb-c.{c,h}
# (the Sparkplug B schema); the objects go into the library, the headers are found by -I.
PROTO_SRC := $(sort $(shell find src -name '*.proto'))
PROTO_C   := $(foreach p,$(PROTO_SRC),$(O)/gen/$(basename $(notdir $(p))).pb-c.c)
PROTO_H   := $(PROTO_C:.c=.h)
PROTO_OBJ := $(PROTO_C:.c=.o)
CPPFLAGS  += -I$(O)/gen

LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(O)/tests/%)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(O)/%.o)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(O)/bench/%)

LIB := $(O)/libmillrace.a
BIN := $(O)/millrace

.PHONY: print-pkgs all lib test unit-tests demo bench fmt fmt-check fuzz fuzz-smoke docs docs-check valgrind deps clean

all: $(BIN)
lib: $(LIB)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(TEST_SUPPORT_OBJ): CPPFLAGS += -Itests/unit

$(O)/gen/%.pb-c.c $(O)/gen/%.pb-c.h: $(PROTO_SRC)
	@mkdir -p $(O)/gen
	protoc-c --proto_path=$(dir $(filter %/$*.proto,$(PROTO_SRC))) --c_out=$(O)/gen $*.proto
$(PROTO_OBJ): %.o: %.c %.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
# Any library source may include a generated header: generate them first.
$(LIB_OBJ): | $(PROTO_H)

$(LIB): $(LIB_OBJ) $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The demo's configuration is compiled in, so `millrace demo` runs anywhere.
DEMO_CONF_OBJ := $(O)/gen/demo_config.o
$(O)/gen/demo_config.c: examples/demo.yaml scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh mr_demo_config < $< > $@
$(DEMO_CONF_OBJ): $(O)/gen/demo_config.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BIN): $(CLI_OBJ) $(DEMO_CONF_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(DEMO_CONF_OBJ) $(LIB) $(PKG_LIBS) -o $@

$(O)/tests/%: tests/unit/%.c $(TEST_SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests/unit $< $(TEST_SUPPORT_OBJ) $(LIB) $(LDFLAGS) $(PKG_LIBS) \
	    -lcmocka -o $@

$(O)/bench/%: bench/%.c $(wildcard bench/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags $(BENCH_PKGS) 2>/dev/null) $< $(LIB) \
	    $(LDFLAGS) $(PKG_LIBS) $(shell pkg-config --libs $(BENCH_PKGS) 2>/dev/null) -o $@

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_SUPPORT_OBJ:.o=.d)

# The runtime packages, for scripts that build outside make (tests/fuzz/run.sh).
print-pkgs:
	@echo $(PKGS)

deps:
	@scripts/install-deps.sh build

unit-tests: $(TEST_BIN) $(BIN)

# Everything a test needs, built with sanitizers, then every test layer (tests/run.sh prints the
# closing "N passed, N failed" line CI reads).
test:
	@scripts/install-deps.sh test
	$(MAKE) MODE=asan unit-tests
	$(MAKE) docs-check
	$(MAKE) fmt-check
	MR_BUILD=$(BUILD)/asan tests/run.sh

demo:
	@scripts/install-deps.sh build
	$(MAKE) MODE=release all
	$(BUILD)/release/millrace demo $(DEMO_ARGS)

bench:
	@scripts/install-deps.sh bench
	$(MAKE) MODE=release all $(BUILD)/release/libmillrace.a
	$(MAKE) MODE=release $(BENCH_SRC:bench/%.c=$(BUILD)/release/bench/%)
	MR_BUILD=$(BUILD)/release bench/run.sh

# docs/CONFIG.md is generated from the plugins' field declarations; CI fails when it is stale.
docs: $(BIN)
	$(BIN) config docs > docs/CONFIG.md

docs-check:
	$(MAKE) MODE=release all
	@$(BUILD)/release/millrace config docs | diff -u docs/CONFIG.md - >/dev/null || \
	  { echo "docs/CONFIG.md is stale: run 'make docs' and commit it"; exit 1; }

fmt:
	clang-format -i $$(find src include tests bench -name '*.[ch]')

fmt-check:
	clang-format --dry-run --Werror $$(find src include tests bench -name '*.[ch]')

# libFuzzer targets (clang-14). `make fuzz` runs each for FUZZ_SECONDS (default 300);
# `make test` runs a short smoke of each through tests/run.sh.
FUZZ_SECONDS ?= 300
fuzz:
	@scripts/install-deps.sh test
	tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke:
	tests/fuzz/run.sh 10

valgrind:
	$(MAKE) MODE=release unit-tests
	@set -e; for t in $(TEST_SRC:tests/unit/%.c=$(BUILD)/release/tests/%); do \
	  valgrind -q --error-exitcode=1 --leak-check=full $$t; done

clean:
	rm -rf $(BUILD)
