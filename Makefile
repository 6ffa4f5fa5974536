# ccgw build. Plain GNU make, pkg-config for every dependency, out-of-tree
# objects under build/, -MMD dependency files.
#
#   make                  build every binary into build/bin/
#   make test             unit + integration tests (installs packages first)
#   make test SANITIZER=address|undefined
#   make fuzz             run every fuzz target for FUZZ_SECONDS each
#   make bench            benchmarks, results in build/bench/
#   make up / make down   the local stack
#   make install PREFIX=/usr/local DESTDIR=
#   make format | lint | clean

PREFIX    ?= /usr/local
DESTDIR   ?=
SANITIZER ?=
FUZZ_SECONDS ?= 30
CC        ?= cc

# BUILD may be overridden (make BUILD=build/mine) to keep separate trees.
ifeq ($(SANITIZER),)
BUILD   ?= build
else
BUILD   ?= build/$(SANITIZER)
endif
BINDIR  := $(BUILD)/bin
OBJDIR  := $(BUILD)/obj

PKGS     := libpcre2-8 hiredis libpq jansson yaml-0.1 libmicrohttpd libcrypto
PKGS_TEST:= check

# pkg-config runs lazily so that `make clean` and the install-deps step work
# on a machine that has none of the -dev packages yet.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags $(PKGS_TEST) 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs $(PKGS_TEST) 2>/dev/null)

# snprintf truncation is how we bound messages, and partial initialisers
# zero the rest by definition: neither is a warning here.
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral \
           -Wno-format-truncation -Wno-missing-field-initializers -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fno-strict-aliasing $(WARN) -MMD -MP -Ilib
LDLIBS  := -lm -lpthread

ifeq ($(SANITIZER),address)
CFLAGS  += -fsanitize=address -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address
else ifeq ($(SANITIZER),undefined)
CFLAGS  += -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=undefined
else ifneq ($(SANITIZER),)
$(error SANITIZER must be address or undefined, not $(SANITIZER))
endif

# Components: folder -> binary. Every .c in a folder except main.c goes into
# build/obj/lib<folder>.a, which the unit tests link without main().
COMPONENTS := gateway relaystats node haproxy
BIN_gateway    := cc-gateway
BIN_relaystats := relaystats
BIN_node       := cc-node
BIN_haproxy    := cc-routes

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(OBJDIR)/%.o)
LIBCC     := $(BUILD)/libcc.a

define component_rules
$(1)_SRC  := $$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c))
$(1)_OBJ  := $$($(1)_SRC:%.c=$$(OBJDIR)/%.o)
$(1)_LIB  := $$(OBJDIR)/lib$(1).a
$$($(1)_LIB): $$($(1)_OBJ)
	@mkdir -p $$(@D)
	rm -f $$@ && $$(AR) rcs $$@ $$^
$$(BINDIR)/$$(BIN_$(1)): $$(OBJDIR)/$(1)/main.o $$($(1)_LIB) $$(LIBCC)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(PKG_LIBS) $$(LDLIBS)
endef
$(foreach c,$(COMPONENTS),$(eval $(call component_rules,$(c))))

BINS := $(foreach c,$(COMPONENTS),$(if $(wildcard $(c)/main.c),$(BINDIR)/$(BIN_$(c))))
COMPONENT_LIBS := $(foreach c,$(COMPONENTS),$(if $(wildcard $(c)/*.c),$($(c)_LIB)))

# Unit tests: tests/unit/test_<module>.c defines Suite *<module>_suite(void);
# the runner's suite table is generated from the file names.
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_OBJ  := $(UNIT_SRC:%.c=$(OBJDIR)/%.o)
UNIT_BIN  := $(BUILD)/tests/unit-tests
SUITES_H  := $(OBJDIR)/tests/unit/suites.h

.PHONY: all deps test unit integration fuzz bench up down install format lint clean
.DEFAULT_GOAL := all

all: deps $(BINS) $(UNIT_BIN)

deps:
	@scripts/install-deps

$(LIBCC): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(OBJDIR)/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(OBJDIR)/tests/unit/%.o: tests/unit/%.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -I. -c -o $@ $<

$(SUITES_H): $(UNIT_SRC) Makefile
	@mkdir -p $(@D)
	@{ for f in $(UNIT_SRC); do m=$$(basename $$f .c); m=$${m#test_}; \
	   echo "SUITE($${m})"; done; } > $@.tmp && mv $@.tmp $@

$(OBJDIR)/tests/unit/runner.o: tests/unit/runner.c $(SUITES_H) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -I$(OBJDIR)/tests/unit -c -o $@ $<

$(UNIT_BIN): $(OBJDIR)/tests/unit/runner.o $(UNIT_OBJ) $(COMPONENT_LIBS) $(LIBCC)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) $(LDLIBS)

test: all
	@echo "== unit tests ($(UNIT_BIN))"
	CCGW_TESTDATA=tests/data $(UNIT_BIN)
	@echo "== integration tests"
	CCGW_BIN=$(abspath $(BINDIR)) SANITIZER=$(SANITIZER) tests/integration/run

unit: all
	CCGW_TESTDATA=tests/data $(UNIT_BIN)

integration: all
	CCGW_BIN=$(abspath $(BINDIR)) SANITIZER=$(SANITIZER) tests/integration/run

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run

bench: all
	CCGW_BIN=$(abspath $(BINDIR)) tests/bench/run

up: all
	scripts/stack up
	scripts/demo-traffic

down:
	scripts/stack down

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ccgw
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 deploy/ccgw.example.yaml $(DESTDIR)$(PREFIX)/share/ccgw/
	cp -r haproxy/templates relaystats/sql $(DESTDIR)$(PREFIX)/share/ccgw/ 2>/dev/null || true

SRC_ALL = $(wildcard lib/*.[ch] $(addsuffix /*.[ch],$(COMPONENTS)) tests/unit/*.[ch] tests/fuzz/*.c)

format:
	clang-format -i $(SRC_ALL)

lint: deps
	clang-format --dry-run --Werror $(SRC_ALL)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --suppress=missingIncludeSystem --inline-suppr -Ilib $(filter %.c,$(SRC_ALL))

clean:
	rm -rf build

-include $(shell find $(OBJDIR) -name '*.d' 2>/dev/null)
