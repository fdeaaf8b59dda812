# xport: GNU make build.
#
# Variables (command line or environment):
#   BACKEND=epoll|poll   event loop backend (poll adds -DXP_BACKEND_POLL)
#   READLINE=yes|no      line editing in the xport binary
#   BUILDDIR=build       output directory; sanitizer/poll variants use build-*/
#   CFLAGS=...           optimisation/warning flags (see the default below)
#   EXTRA_CFLAGS=...     appended to compile *and* link lines (sanitizers)
#   T="a b"              substring filters for the unit test runner
#   PREFIX, DESTDIR      for install/uninstall

VERSION    := 0.1.0
SOVERSION  := 0

BACKEND    ?= epoll
READLINE   ?= yes
BUILDDIR   ?= build
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share

CC         ?= cc
AR         ?= ar
CFLAGS     ?= -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter
EXTRA_CFLAGS ?=
LDFLAGS    ?=
# Not meant to be overridden: the code depends on these.
BASE_CFLAGS := -std=gnu11 -fPIC -D_GNU_SOURCE -Iinclude -pthread
LIBS       := -lssl -lcrypto -lpthread

ifeq ($(filter $(BACKEND),epoll poll),)
$(error BACKEND must be epoll or poll, not '$(BACKEND)')
endif
ifeq ($(BACKEND),poll)
BASE_CFLAGS += -DXP_BACKEND_POLL
endif

ifeq ($(READLINE),yes)
CLI_CFLAGS := -DCLI_HAVE_READLINE
CLI_LIBS   := -lreadline
else ifeq ($(READLINE),no)
CLI_CFLAGS :=
CLI_LIBS   :=
else
$(error READLINE must be yes or no, not '$(READLINE)')
endif

ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LINK_FLAGS = -pthread $(CFLAGS) $(EXTRA_CFLAGS) $(LDFLAGS)

# ---------------------------------------------------------------- sources

LIB_SRCS  := $(filter-out src/backend_%.c,$(wildcard src/*.c src/proto/*.c)) \
             $(wildcard src/backend_$(BACKEND).c)
CLI_SRCS  := $(wildcard cli/*.c)
# UNIT_FILES="test_loop test_pipe" links only those test files (handy while
# other files are mid-edit); the default is all of them.
UNIT_SRCS := $(if $(UNIT_FILES),tests/unit/main.c $(UNIT_FILES:%=tests/unit/%.c),$(wildcard tests/unit/*.c))
EX_SRCS   := $(wildcard examples/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)

OBJ       := $(BUILDDIR)/obj
LIB_OBJS  := $(LIB_SRCS:%.c=$(OBJ)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(OBJ)/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(OBJ)/%.o)
EX_OBJS   := $(EX_SRCS:%.c=$(OBJ)/%.o)
FUZZ_OBJS := $(FUZZ_SRCS:%.c=$(OBJ)/%.o)
ALL_OBJS  := $(LIB_OBJS) $(CLI_OBJS) $(UNIT_OBJS) $(EX_OBJS) $(FUZZ_OBJS)

STATIC    := $(BUILDDIR)/libxport.a
SHARED    := $(BUILDDIR)/libxport.so.$(VERSION)
SONAME    := libxport.so.$(SOVERSION)
XPORT     := $(BUILDDIR)/xport
UNIT      := $(BUILDDIR)/tests/unit
EXAMPLES  := $(EX_SRCS:examples/%.c=$(BUILDDIR)/examples/%)
PCFILE    := $(BUILDDIR)/xport.pc

# While src/ or cli/ are still empty, build what can be built (an empty
# libxport.a is fine; a shared library or a program without objects is not).
ALL_TARGETS := $(STATIC) $(UNIT) $(EXAMPLES) $(PCFILE)
ifneq ($(strip $(LIB_SRCS)),)
ALL_TARGETS += $(SHARED)
endif
ifneq ($(strip $(CLI_SRCS)),)
ALL_TARGETS += $(XPORT)
endif

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VALGRIND_FLAGS := -q --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	--track-fds=no --trace-children=no

FORMAT_FILES = $(shell find include src cli tests examples -name '*.[ch]' 2>/dev/null)

.PHONY: all deps test test-unit test-asan test-valgrind test-poll test-cli test-coverage test-format \
	test-fuzz-replay fuzz fuzz-merge fuzz-bins demo bench install uninstall clean format format-check FORCE
.DELETE_ON_ERROR:

all: $(ALL_TARGETS)

# ---------------------------------------------------------------- build rules

# Objects depend on a stamp holding the build configuration, so switching
# READLINE, BACKEND or flags within one BUILDDIR rebuilds what it must.
CONFIG_SIG := $(CC) | $(ALL_CFLAGS) | $(CLI_CFLAGS) | $(LDFLAGS)
$(BUILDDIR)/config.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(CONFIG_SIG)' | cmp -s - $@ || echo '$(CONFIG_SIG)' > $@

$(ALL_OBJS): $(OBJ)/%.o: %.c $(BUILDDIR)/config.stamp
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The wall between tool and library: the library and its white-box tests see
# src/ (private headers); the tool and the examples see the public header
# alone, so a private name used from cli/ fails to compile.
$(LIB_OBJS) $(UNIT_OBJS) $(FUZZ_OBJS): ALL_CFLAGS += -Isrc
$(CLI_OBJS): ALL_CFLAGS += $(CLI_CFLAGS)

# Link steps also depend on a stamp listing their sources, so deleting a
# source file relinks without the stale object.
LIST_lib  := $(LIB_SRCS)
LIST_cli  := $(CLI_SRCS)
LIST_unit := $(UNIT_SRCS)
$(BUILDDIR)/%.srcs: FORCE
	@mkdir -p $(@D)
	@echo '$(strip $(LIST_$*))' | cmp -s - $@ || echo '$(strip $(LIST_$*))' > $@

# Recreate rather than update, so objects of deleted sources do not linger.
$(STATIC): $(LIB_OBJS) $(BUILDDIR)/lib.srcs
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(SHARED): $(LIB_OBJS) $(BUILDDIR)/lib.srcs
	$(CC) -shared -Wl,-soname,$(SONAME) $(LINK_FLAGS) -o $@ $(LIB_OBJS) $(LIBS)
	ln -sf libxport.so.$(VERSION) $(BUILDDIR)/$(SONAME)
	ln -sf $(SONAME) $(BUILDDIR)/libxport.so

$(XPORT): $(CLI_OBJS) $(STATIC) $(BUILDDIR)/cli.srcs
	$(CC) $(LINK_FLAGS) -o $@ $(CLI_OBJS) $(STATIC) $(LIBS) $(CLI_LIBS)

$(UNIT): $(UNIT_OBJS) $(STATIC) $(BUILDDIR)/unit.srcs
	@mkdir -p $(@D)
	$(CC) $(LINK_FLAGS) -o $@ $(UNIT_OBJS) $(STATIC) $(LIBS)

$(EXAMPLES): $(BUILDDIR)/examples/%: $(OBJ)/examples/%.o $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(LINK_FLAGS) -o $@ $< $(STATIC) $(LIBS)

# Always regenerated (cheaply) so a later `make install PREFIX=...` is right.
$(PCFILE): xport.pc.in FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	     -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	     $< > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

-include $(ALL_OBJS:.o=.d)

# ---------------------------------------------------------------- tests

deps:
	@.ci/deps.sh

# tests/run.sh builds each stage itself so that a build failure is counted
# as a failed stage and the summary line is still printed.
test: deps
	+@MAKE='$(MAKE)' tests/run.sh

test-unit: $(UNIT)
	$(TEST_ENV) $(UNIT) $(T)

test-asan:
	+$(MAKE) --no-print-directory BUILDDIR=build-asan EXTRA_CFLAGS='$(ASAN_FLAGS)' \
		TEST_ENV='ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1' \
		all test-unit

test-valgrind: $(UNIT)
	XP_TEST_SLOW=1 valgrind $(VALGRIND_FLAGS) $(UNIT) $(T)

test-poll:
	+$(MAKE) --no-print-directory BUILDDIR=build-poll BACKEND=poll all test-unit

# bats files find the binaries through XPORT and XPORT_BUILDDIR.
test-coverage:
	@tests/sem_coverage.sh

test-cli: all
	@if ls tests/cli/*.bats >/dev/null 2>&1; then \
		XPORT='$(abspath $(XPORT))' XPORT_BUILDDIR='$(abspath $(BUILDDIR))' \
			bats --tap tests/cli/*.bats; \
	else echo "no tests/cli/*.bats"; fi

demo: deps all
	BUILDDIR='$(BUILDDIR)' tests/demo.sh

bench:
	@.ci/deps.sh bench
	+$(MAKE) --no-print-directory all
	BUILDDIR='$(BUILDDIR)' tests/bench/run.sh

# ---------------------------------------------------------------- fuzzing
# tests/fuzz/README.md explains the harnesses and the corpora.
#   make fuzz [FUZZ=args] [FUZZ_SECONDS=60]   libFuzzer campaigns (clang)
#   make fuzz-merge [FUZZ=args]               new coverage into the corpus
#   make test-fuzz-replay                     every corpus file, gcc ASan

FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ         ?= $(FUZZ_NAMES)
FUZZ_SECONDS ?= 60
# libfuzzer: link libFuzzer's main; replay: tests/fuzz/driver.c's.
FUZZ_MAIN    ?= replay
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILDDIR)/fuzz/%)
CLI_LIB      := $(BUILDDIR)/libxportcli.a
FUZZ_CFLAGS  := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=all

ifeq ($(FUZZ_MAIN),libfuzzer)
FUZZ_DRIVER  :=
FUZZ_LINK    := -fsanitize=fuzzer
else
FUZZ_DRIVER  := $(OBJ)/tests/fuzz/driver.o
FUZZ_LINK    :=
endif

# The front end without its main(), for the harnesses that call into it.
$(CLI_LIB): $(filter-out $(OBJ)/cli/main.o,$(CLI_OBJS)) $(BUILDDIR)/cli.srcs
	rm -f $@
	$(AR) rcs $@ $(filter-out $(OBJ)/cli/main.o,$(CLI_OBJS))

$(FUZZ_BINS): $(BUILDDIR)/fuzz/%: $(OBJ)/tests/fuzz/fuzz_%.o $(FUZZ_DRIVER) $(CLI_LIB) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(LINK_FLAGS) $(FUZZ_LINK) -o $@ $< $(FUZZ_DRIVER) $(CLI_LIB) $(STATIC) \
		$(LIBS) $(CLI_LIBS)

fuzz-bins: $(FUZZ_BINS)

# In `make test` (stage fuzz-replay): shares build-asan/ with test-asan.
test-fuzz-replay:
	+@$(MAKE) --no-print-directory -s BUILDDIR=build-asan EXTRA_CFLAGS='$(ASAN_FLAGS)' fuzz-bins
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/fuzz/replay.sh build-asan/fuzz $(FUZZ_NAMES)

fuzz:
	@.ci/deps.sh fuzz
	+@$(MAKE) --no-print-directory BUILDDIR=build-fuzz CC=clang FUZZ_MAIN=libfuzzer \
		EXTRA_CFLAGS='$(FUZZ_CFLAGS)' fuzz-bins
	FUZZ_SECONDS='$(FUZZ_SECONDS)' tests/fuzz/campaign.sh build-fuzz $(FUZZ)

fuzz-merge:
	tests/fuzz/campaign.sh -merge build-fuzz $(FUZZ)

# ---------------------------------------------------------------- install

BASH_COMPLETION ?= completions/xport.bash
ZSH_COMPLETION  ?= completions/_xport
FISH_COMPLETION ?= completions/xport.fish

D := $(DESTDIR)
# $(call install-if,SRC,DESTFILE): install a data file when it exists
install-if = if [ -f $(1) ]; then install -d $(D)$(dir $(2)) && install -m 644 $(1) $(D)$(2); fi

install: all
	install -d $(D)$(INCLUDEDIR) $(D)$(LIBDIR)/pkgconfig $(D)$(BINDIR)
	install -m 644 include/xport.h $(D)$(INCLUDEDIR)/xport.h
	install -m 644 $(STATIC) $(D)$(LIBDIR)/libxport.a
	install -m 644 $(PCFILE) $(D)$(LIBDIR)/pkgconfig/xport.pc
	if [ -f $(SHARED) ]; then \
		install -m 755 $(SHARED) $(D)$(LIBDIR)/libxport.so.$(VERSION) && \
		ln -sf libxport.so.$(VERSION) $(D)$(LIBDIR)/$(SONAME) && \
		ln -sf $(SONAME) $(D)$(LIBDIR)/libxport.so; fi
	if [ -f $(XPORT) ]; then install -m 755 $(XPORT) $(D)$(BINDIR)/xport; fi
	$(call install-if,man/xport.1,$(MANDIR)/man1/xport.1)
	$(call install-if,man/xport.3,$(MANDIR)/man3/xport.3)
	$(call install-if,$(BASH_COMPLETION),$(DATADIR)/bash-completion/completions/xport)
	$(call install-if,$(ZSH_COMPLETION),$(DATADIR)/zsh/site-functions/_xport)
	$(call install-if,$(FISH_COMPLETION),$(DATADIR)/fish/vendor_completions.d/xport.fish)

uninstall:
	rm -f $(D)$(INCLUDEDIR)/xport.h $(D)$(LIBDIR)/libxport.a \
	      $(D)$(LIBDIR)/libxport.so $(D)$(LIBDIR)/$(SONAME) \
	      $(D)$(LIBDIR)/libxport.so.$(VERSION) $(D)$(LIBDIR)/pkgconfig/xport.pc \
	      $(D)$(BINDIR)/xport $(D)$(MANDIR)/man1/xport.1 $(D)$(MANDIR)/man3/xport.3 \
	      $(D)$(DATADIR)/bash-completion/completions/xport \
	      $(D)$(DATADIR)/zsh/site-functions/_xport \
	      $(D)$(DATADIR)/fish/vendor_completions.d/xport.fish

# ---------------------------------------------------------------- misc

clean:
	rm -rf build build-asan build-poll build-fuzz \
		$(filter-out build build-asan build-poll build-fuzz,$(filter build%,$(BUILDDIR)))

FORCE:

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# For tests/run.sh: the tree follows .clang-format (one check).
test-format:
	@if clang-format --dry-run --Werror $(FORMAT_FILES) 2>/dev/null; then \
		echo "1 passed, 0 failed"; \
	else \
		echo "clang-format: run 'make format'"; echo "0 passed, 1 failed"; exit 1; \
	fi
