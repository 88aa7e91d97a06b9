# Cordon - plain Makefile. Switches:
#   make SANITIZER=address,undefined   build into build-<sanitizer>/
#   make test        suite, then the same suite under ASan+UBSan
#   make demo        the main job on the bundled media
#   make bench       benchmarks (fetches corpora into $(CORDON_CACHE))
#   make format / make check-format
CC ?= cc
SANITIZER ?=
comma := ,
ifeq ($(SANITIZER),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-$(subst $(comma),-,$(SANITIZER))
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

VERSION := 0.1.0
PKGS := libturbojpeg libpng libavformat libavcodec libavutil libswscale lmdb libcrypto jansson libmicrohttpd libcurl
TEST_PKGS := zlib

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

OPT ?= -O2
# V=1 shows full command lines.
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif
# -ffp-contract=off: the PDQ reference is built without fused multiply-add,
# and contracting a*b+c changes the last bits of a hash.
CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE $(OPT) -g -fPIC \
	-ffp-contract=off -fvisibility=hidden -pthread -MMD -MP \
	-DCORDON_VERSION='"$(VERSION)"' -Iengine -Ihashdb
ALL_CFLAGS = $(CFLAGS_BASE) $(PKG_CFLAGS) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) -pthread $(LDFLAGS)
LIBS = $(PKG_LIBS) -lm

# Only the per-ISA files get ISA flags (DESIGN 6.7).
AVX2_FLAGS := -mavx2 -mpopcnt
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq -mavx2 -mpopcnt -mbmi2

LIB_SRC := $(sort $(wildcard engine/*.c hashdb/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_HELPER_SRC := $(sort $(filter-out tests/test_%,$(wildcard tests/*.c)))
BENCH_SRC := $(sort $(wildcard benchmarks/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:benchmarks/%.c=$(BUILD)/bench/%)


.PHONY: all build-all build-tests deps lib tools tests benches test test-run demo bench format check-format clean install
.DEFAULT_GOAL := all
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory build-all

build-all: build-tests benches

build-tests: lib $(BUILD)/cordon tests

deps:
	@scripts/deps.sh

lib: $(BUILD)/libcordon.a $(BUILD)/libcordon.so $(BUILD)/cordon.pc $(BUILD)/include/cordon.h
tests: $(TEST_BIN)
benches: $(BENCH_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/engine/%_avx2.o: engine/%_avx2.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(AVX2_FLAGS) -c $< -o $@

$(BUILD)/engine/%_avx512.o: engine/%_avx512.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(AVX512_FLAGS) -c $< -o $@

$(BUILD)/libcordon.a: $(LIB_OBJ)
	$(call msg,AR,$@)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libcordon.so: $(LIB_OBJ)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libcordon.so.0 $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/include/cordon.h: engine/cordon.h $(wildcard engine/cordon_*.h hashdb/*.h)
	@mkdir -p $(BUILD)/include
	$(Q)cp engine/cordon*.h $(wildcard hashdb/*.h) $(BUILD)/include/

$(BUILD)/cordon.pc: Makefile
	@mkdir -p $(BUILD)
	@printf 'prefix=/usr/local\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include/cordon\n\nName: cordon\nDescription: Perceptual-hash media matching engine\nVersion: $(VERSION)\nRequires.private: $(PKGS)\nLibs: -L$${libdir} -lcordon\nLibs.private: -lm -pthread\nCflags: -I$${includedir}\n' > $@

$(BUILD)/cordon: $(TOOL_OBJ) $(BUILD)/libcordon.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libcordon.a $(LIBS)

$(BUILD)/tests/%: tests/%.c $(TEST_HELPER_OBJ) $(BUILD)/libcordon.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(TEST_HELPER_OBJ) $(BUILD)/libcordon.a $(ALL_LDFLAGS) $(LIBS) $(TEST_LIBS)

$(BUILD)/bench/%: benchmarks/%.c $(BUILD)/libcordon.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libcordon.a $(ALL_LDFLAGS) $(LIBS)

# The suite, then the same suite under AddressSanitizer + UBSan.
test: deps
	@$(MAKE) --no-print-directory build-all
	@$(MAKE) --no-print-directory SANITIZER=address,undefined OPT=-O1 build-tests
	@tests/run.sh build build-address-undefined

# Runs the suite of one build directory only (e.g. make test-run BUILD=build).
test-run:
	@tests/run.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory build-all
	@scripts/demo.sh $(BUILD)/cordon

bench:
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory build-all
	@benchmarks/run $(BUILD)

FORMAT_SRC = $(wildcard engine/*.[ch] hashdb/*.[ch] tools/*.[ch] tests/*.[ch] benchmarks/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)
check-format:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-*

-include $(shell find build build-* -name '*.d' 2>/dev/null)
