# expose: make, make check, make demo, make bench, make install.
#
# make                  builds bin/expose bin/exposed bin/expose-edge bin/expose-edge-tls
#                       bin/exposectl bin/expose-mirror
# make SAN=address,undefined BUILD=build-san BIN=build-san/bin
#                       the same with sanitizers, in their own directory
# make check            unit tests, then end-to-end tests, plain and sanitized
# make demo             the whole system on loopback
# make deps             installs the Debian packages the build and tests need

PREFIX    ?= /usr/local
DESTDIR   ?=
SBINDIR   ?= $(PREFIX)/sbin
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DOCDIR    ?= $(PREFIX)/share/doc/expose
UNITDIR   ?= $(PREFIX)/lib/systemd/system

BUILD     ?= build
BIN       ?= bin
SAN       ?=
CC        ?= cc
PKG_CONFIG ?= pkg-config
PYTHON    ?= /usr/bin/python3

LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

CFLAGS    ?= -O2 -g
WARN      := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror \
             -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(SAN),)
HARDEN    := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDHARDEN  := -pie -Wl,-z,relro,-z,now
else
HARDEN    := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all -fPIE
LDHARDEN  := -fsanitize=$(SAN) -pie
CFLAGS    := -O1 -g
endif

PKGS      := libwebsockets libsodium sqlite3
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) $(HARDEN) $(CFLAGS) -iquote lib -iquote $(BUILD) -I$(LLHTTP_INC) $(PKG_CFLAGS)

LWS_LIBS    = $(shell $(PKG_CONFIG) --libs libwebsockets 2>/dev/null || echo -lwebsockets)
SODIUM_LIBS = $(shell $(PKG_CONFIG) --libs libsodium 2>/dev/null || echo -lsodium)
SQLITE_LIBS = $(shell $(PKG_CONFIG) --libs sqlite3 2>/dev/null || echo -lsqlite3)
GNUTLS_LIBS = $(shell $(PKG_CONFIG) --libs gnutls 2>/dev/null || echo -lgnutls)

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o) $(BUILD)/sql.o
LLHTTP_OBJ := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
LIBEXPOSE := $(BUILD)/libexpose.a
LIBLLHTTP := $(BUILD)/libllhttp.a

PROGS     := expose exposed expose-edge expose-edge-tls exposectl expose-mirror
PROG_BINS := $(PROGS:%=$(BIN)/%)

# What each program links beyond libexpose.
LIBS_expose      = $(BUILD)/inspect_html.o $(LIBLLHTTP) $(LWS_LIBS) $(SODIUM_LIBS) \
                   -ljansson -lqrencode -lssl -lcrypto
# The broker's loop is libev's (Debian ships no libev.pc); lws runs on it
# through its plugin libwebsockets-evlib_ev.so, dlopened at start.
LIBS_exposed     = $(LWS_LIBS) -lev $(SODIUM_LIBS) $(SQLITE_LIBS) -ljansson -lpthread -lssl -lcrypto
LIBS_expose-edge = $(LIBLLHTTP) $(SODIUM_LIBS) $(SQLITE_LIBS)
LIBS_expose-edge-tls = $(LIBS_expose-edge) $(GNUTLS_LIBS)
LIBS_exposectl   = $(SODIUM_LIBS) $(SQLITE_LIBS)
LIBS_expose-mirror = $(SODIUM_LIBS) $(SQLITE_LIBS) -ljansson

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_LIBS = $(LIBEXPOSE) $(LIBLLHTTP) -lcmocka $(SODIUM_LIBS) $(SQLITE_LIBS) -ljansson -lcrypto

.PHONY: all clean check units demo bench bench-compare deps install uninstall fuzz deadcode
.SUFFIXES:

all: $(PROG_BINS)

# The edge starts once per public connection: linked statically (and
# position-independent, for ASLR), it saves about a millisecond of dynamic
# loading per connection (make bench shows it).  Its 3,200 relative
# relocations packed (RELR: 800 bytes, not 76 KiB of RELA to read at each
# start) cost 3 page faults fewer a connection (tests/bench/edgecost.py).
# Sanitizer builds stay dynamic: the sanitizers need it.
ifeq ($(SAN),)
LDLINK_expose-edge = -static-pie -Wl,-z,relro,-z,now -Wl,-z,pack-relative-relocs
LIBS_STATIC_expose-edge = -lpthread -ldl
# The https edge cannot be static: Debian ships no static p11-kit, which
# GnuTLS needs.  So p11-kit alone is linked dynamically and GnuTLS, its
# crypto and the rest statically: 6.5 M instructions per connection,
# against 8.9 M with GnuTLS's libraries loaded at run time and 23.0 M
# with OpenSSL (tests/bench/edge_instructions.sh).
GNUTLS_STATIC = -lgnutls -lhogweed -lnettle -lgmp -ltasn1 -lidn2 -lunistring
LIBS_expose-edge-tls = $(LIBLLHTTP) -Wl,-Bstatic $(SODIUM_LIBS) $(SQLITE_LIBS) $(GNUTLS_STATIC) \
                       -Wl,-Bdynamic -lp11-kit
endif

# The edge, built twice from cmd/expose-edge: expose-edge speaks plain
# HTTP and links no TLS library (notls.c), so that a plain connection
# pays for no TLS library's relocations and constructors at exec;
# expose-edge-tls is the https edge (tls.c, on GnuTLS).
EDGE_SRC := $(filter-out cmd/expose-edge/tls.c cmd/expose-edge/notls.c,\
                         $(wildcard cmd/expose-edge/*.c))
expose-edge_SRC := $(EDGE_SRC) cmd/expose-edge/notls.c
expose-edge-tls_SRC := $(EDGE_SRC) cmd/expose-edge/tls.c

# Each program: cmd/<name>/*.c
define prog_rule
$(1)_SRC ?= $$(wildcard cmd/$(1)/*.c)
$(1)_OBJ := $$(patsubst cmd/%.c,$(BUILD)/cmd/%.o,$$($(1)_SRC))
$(BIN)/$(1): $$($(1)_OBJ) $(LIBEXPOSE) $(LIBLLHTTP)
	@mkdir -p $$(@D)
	$(CC) $$(if $$(LDLINK_$(1)),$$(LDLINK_$(1)),$(LDHARDEN)) $(LDFLAGS) -o $$@ $$($(1)_OBJ) \
		$(LIBEXPOSE) $$(LIBS_$(1)) -lm $$(LIBS_STATIC_$(1)) 2> $$@.ldlog || \
		{ cat $$@.ldlog >&2; rm -f $$@.ldlog; exit 1; }
	@# glibc's and OpenSSL's notes about dlopen in a static binary: harmless here.
	@grep -v -e 'statically linked applications requires at runtime' -e 'in function' \
		$$@.ldlog >&2 || true
	@rm -f $$@.ldlog
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

$(BUILD)/cmd/%.o: cmd/%.c lib/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -iquote cmd/$(firstword $(subst /, ,$*)) -MMD -c -o $@ $<

$(BUILD)/lib/%.o: lib/%.c lib/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/sql.c: sql/sql2c $(sort $(wildcard sql/*.sql))
	@mkdir -p $(@D)
	sql/sql2c $(sort $(wildcard sql/*.sql)) > $@

$(BUILD)/sql.o: $(BUILD)/sql.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The inspector's page, built into the client.
$(BUILD)/inspect_html.c: cmd/expose/inspect.html cmd/expose/html2c
	@mkdir -p $(@D)
	cmd/expose/html2c $< > $@

$(BUILD)/inspect_html.o: $(BUILD)/inspect_html.c
	$(CC) $(ALL_CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(BIN)/expose: $(BUILD)/inspect_html.o

$(LIBEXPOSE): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# llhttp, built from the C sources Debian ships in node-llhttp.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -DLLHTTP_STRICT_MODE=1 $(filter -fsanitize% -fno-omit% -fPIE,$(HARDEN)) -I$(LLHTTP_INC) -c -o $@ $<

$(LIBLLHTTP): $(LLHTTP_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(LIBEXPOSE) $(LIBLLHTTP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -MMD $(LDHARDEN) -o $@ $< $(UNIT_LIBS) -lm

# What the end-to-end tests start programs through (tests/lifeline).
$(BUILD)/tests/lifeline: tests/lifeline/lifeline.c $(LIBEXPOSE)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $< $(LIBEXPOSE)

-include $(wildcard $(BUILD)/cmd/*/*.d $(BUILD)/tests/*.d)

# Fails on an external function that no other file calls (tests/deadcode.sh).
deadcode: all
	sh tests/deadcode.sh $(foreach p,$(PROGS),$($(p)_OBJ)) $(LIB_OBJ) $(BUILD)/inspect_html.o

# --- tests ---

deps:
	@tests/deps.sh --install

check: deps
	@tests/check.sh

units: $(UNIT_BINS) $(BUILD)/tests/lifeline

demo: deps all
	@tests/demo.sh

bench: deps all
	@tests/bench/run.sh

clean:
	rm -rf build build-san build-fuzz bin

# --- fuzzing (clang, libFuzzer) ---

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -iquote lib -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1
LLHTTP_C     := $(LLHTTP_SRC)/llhttp.c $(LLHTTP_SRC)/api.c $(LLHTTP_SRC)/http.c
FUZZ_BINS    := build-fuzz/fuzz_http_req build-fuzz/fuzz_frame build-fuzz/fuzz_conf \
                build-fuzz/fuzz_host build-fuzz/fuzz_edit build-fuzz/fuzz_http_resp \
                build-fuzz/fuzz_preamble

build-fuzz/fuzz_http_req: tests/fuzz/fuzz_http_req.c lib/http_req.c lib/http_req_check.c \
                          lib/http_req_emit.c lib/buf.c lib/host.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(LLHTTP_C)

build-fuzz/fuzz_http_resp: tests/fuzz/fuzz_http_resp.c lib/http_resp.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(LLHTTP_C)

build-fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c lib/frame.c lib/proto.c lib/buf.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_conf: tests/fuzz/fuzz_conf.c lib/conf.c lib/settings.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_edit: tests/fuzz/fuzz_edit.c cmd/expose/edit.c lib/buf.c lib/*.h cmd/expose/edit.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -iquote cmd/expose -o $@ $(filter %.c,$^) -ljansson -lsodium

build-fuzz/fuzz_host: tests/fuzz/fuzz_host.c lib/host.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_preamble: tests/fuzz/fuzz_preamble.c lib/preamble.c lib/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

fuzz: deps $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

# --- install ---

SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UNITS       := expose.socket expose@.service expose-tls.socket expose-tls@.service \
               expose-tickets.service expose-tickets.timer \
               exposed.socket exposed-control.socket \
               exposed.service expose-mirror.service
MAN1 := man/expose.1
MAN5 := man/expose.conf.5
MAN7 := man/expose.7
MAN8 := man/exposed.8 man/expose-edge.8 man/exposectl.8 man/expose-mirror.8

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(TMPFILESDIR)
	install -m 755 $(BIN)/expose $(DESTDIR)$(BINDIR)/expose
	install -m 755 $(BIN)/exposed $(BIN)/expose-edge $(BIN)/expose-edge-tls $(BIN)/exposectl \
		$(BIN)/expose-mirror \
		$(DESTDIR)$(SBINDIR)/
	for u in $(UNITS); do \
		sed 's|@SBINDIR@|$(SBINDIR)|g' units/$$u > $(DESTDIR)$(UNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 644 units/expose.sysusers $(DESTDIR)$(SYSUSERSDIR)/expose.conf
	install -m 644 units/expose.tmpfiles $(DESTDIR)$(TMPFILESDIR)/expose.conf
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/
	install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	ln -sf expose-edge.8 $(DESTDIR)$(MANDIR)/man8/expose-edge-tls.8
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 644 units/expose.conf.example $(DESTDIR)$(DOCDIR)/expose.conf.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/expose
	rm -f $(DESTDIR)$(SBINDIR)/exposed $(DESTDIR)$(SBINDIR)/expose-edge \
	      $(DESTDIR)$(SBINDIR)/expose-edge-tls $(DESTDIR)$(SBINDIR)/exposectl \
	      $(DESTDIR)$(SBINDIR)/expose-mirror
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	rm -f $(DESTDIR)$(SYSUSERSDIR)/expose.conf $(DESTDIR)$(TMPFILESDIR)/expose.conf
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7))) \
	      $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
	      $(DESTDIR)$(MANDIR)/man8/expose-edge-tls.8
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/expose.conf.example
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

# Two runs of make bench side by side: make bench-compare A=old.json B=new.json
bench-compare:
	@tests/bench/compare.py $(A) $(B)
