# pgw - transparent proxy gateway. `make` builds build/bin/*; `make test` runs every test;
# `make demo` runs a full gateway in a network-namespace lab. V=1 shows commands.
# Overrides: CC, CFLAGS, BUILD (output dir), SAN=1 (AddressSanitizer + UBSan), PREFIX, DESTDIR.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
PKGS    := sqlite3 libargon2 gnutls libcap-ng libmnl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
PGW_VERSION ?= 1.3.0
CPPFLAGS += -D_GNU_SOURCE -DPGW_VERSION='"$(PGW_VERSION)"' -Icommon -I$(BUILD)/gen
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -fstack-protector-strong -D_FORTIFY_SOURCE=2
ifeq ($(SAN),1)
  CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  ALL_CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(ALL_CFLAGS))
  LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS  += $(PKG_LIBS)

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
LIBCOMMON  := $(BUILD)/libpgwcommon.a
DAEMONS    := pgw-api pgw-agent pgw-forwarder pgw-healthd
BINS       := $(DAEMONS:%=$(BUILD)/bin/%) $(BUILD)/bin/pgwctl
MIGRATIONS := $(sort $(wildcard db/migrations/*.sql))

dir_of = $(patsubst pgw-%,%,$(1))
pgw_api_SRC       := $(wildcard api/*.c)
pgw_agent_SRC     := $(wildcard agent/*.c)
pgw_forwarder_SRC := $(wildcard forwarder/*.c)
pgw_healthd_SRC   := $(wildcard healthd/*.c)
pgwctl_SRC        := $(wildcard pgwctl/*.c)
pgw_agent_LIBS    := $(shell pkg-config --libs libnftnl libnetfilter_conntrack 2>/dev/null)
pgw_forwarder_LIBS := -lpthread
pgw_healthd_LIBS  := -lpthread
pgwctl_LIBS       := $(shell pkg-config --libs jansson 2>/dev/null)
pgw_api_LIBS      := $(shell pkg-config --libs libmicrohttpd jansson libjwt libcrypto libcurl 2>/dev/null) -lpthread
ALL_SRC := $(COMMON_SRC) $(pgw_api_SRC) $(pgw_agent_SRC) $(pgw_forwarder_SRC) $(pgw_healthd_SRC) $(pgwctl_SRC)

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean deps test test-unit unit-bins demo bench fmt fmt-check install uninstall
all: $(BINS)

$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(@D)
	$(Q)sh scripts/embed-migrations.sh $@ $(MIGRATIONS)

$(BUILD)/%.o: %.c | $(BUILD)/gen/migrations.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	$(Q)$(AR) rcs $@ $^

define bin_rule
$(BUILD)/bin/$(1): $$(patsubst %.c,$(BUILD)/%.o,$$($(subst -,_,$(1))_SRC)) $(LIBCOMMON)
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$($(subst -,_,$(1))_LIBS) $$(LDLIBS)
endef
$(foreach b,$(DAEMONS) pgwctl,$(eval $(call bin_rule,$(b))))

# Unit tests: one cmocka binary per tests/unit/test_<module>.c, linked with libpgwcommon and
# with the daemon sources it names in test_<module>_SRC (and their libraries in _LIBS).
test_ruleset_SRC := agent/ruleset.c agent/expr.c agent/batch.c agent/desired.c agent/link.c
test_ruleset_LIBS := $(shell pkg-config --libs libnftnl 2>/dev/null)
test_desired_SRC := agent/desired.c agent/link.c
test_hysteresis_SRC := healthd/hysteresis.c
test_probe_SRC := healthd/probe.c
test_table_SRC := forwarder/table.c
test_dnscache_SRC := forwarder/dnscache.c
test_destfail_SRC := forwarder/destfail.c
test_destfail_LIBS := -lpthread
test_fwdcontrol_SRC := forwarder/control.c
test_fwdcontrol_LIBS := -lpthread
test_fwdstats_SRC := forwarder/stats.c
test_fwdstats_LIBS := $(shell pkg-config --libs jansson 2>/dev/null) -lpthread -Wl,--wrap=calloc,--wrap=malloc
test_events_SRC := api/events.c
test_events_LIBS := $(shell pkg-config --libs jansson 2>/dev/null) -lpthread
test_throttle_SRC := api/throttle.c
test_throttle_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
test_csv_SRC := api/csv.c
test_oidc_jwt_SRC := api/oidc_jwt.c
test_oidc_jwt_LIBS := $(shell pkg-config --libs libjwt jansson libcrypto 2>/dev/null)
test_hasnap_SRC := api/hasnap.c
test_token_SRC := api/token.c
test_token_LIBS := $(test_oidc_jwt_LIBS)
test_hasnap_LIBS := $(shell pkg-config --libs jansson 2>/dev/null)
test_settings_LIBS := $(shell pkg-config --libs jansson 2>/dev/null) -lpthread
test_notify_LIBS := -lpthread
test_objs = $(addprefix $(BUILD)/,$(patsubst %.c,%.o,$($(1)_SRC)))
.SECONDEXPANSION:
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $$(call test_objs,$$*) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $($*_LIBS) $(LDLIBS) -lcmocka

unit-bins: $(UNIT_BINS) $(BINS)

deps:
	$(Q)sh scripts/deps.sh

test: deps
	$(Q)bash tests/run.sh

test-unit: unit-bins
	$(Q)bash tests/run.sh --unit-only

demo: deps all
	$(Q)bash scripts/demo.sh

bench: deps all
	$(Q)bash bench/run.sh

# Formatting: one .clang-format for every C file; `make fmt` rewrites, `make fmt-check` (part of
# make test) fails on any file that deviates.
FMT_FILES := $(sort $(wildcard common/*.[ch] agent/*.[ch] api/*.[ch] forwarder/*.[ch] healthd/*.[ch] pgwctl/*.[ch] \
	tests/unit/*.[ch] tests/fuzz/*.c))
fmt:
	clang-format -i $(FMT_FILES)

fmt-check:
	$(Q)clang-format --dry-run --Werror $(FMT_FILES) && echo "format: $(words $(FMT_FILES)) files as .clang-format says"

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Fuzzers: clang + libFuzzer, each harness linked with the common sources it exercises.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon -Ibuild/gen $(PKG_CFLAGS)
FUZZ_EXTRA_fuzz_probe := healthd/probe.c
FUZZ_EXTRA_fuzz_dns := forwarder/dnscache.c
FUZZ_EXTRA_fuzz_json := api/jsoncheck.c
FUZZ_EXTRA_fuzz_csv := api/csv.c
FUZZ_EXTRA_fuzz_proxyuri := api/proxyuri.c
FUZZ_EXTRA_fuzz_hasnap := api/hasnap.c
FUZZ_EXTRA_fuzz_oidc := api/oidc_jwt.c
FUZZ_EXTRA_fuzz_auth := api/token.c
FUZZ_EXTRA_fuzz_paths := api/paths.c
FUZZ_EXTRA_fuzz_hacrypt := api/hacrypt.c
FUZZ_EXTRA_fuzz_proxybody := api/proxybody.c api/jsoncheck.c api/csv.c
FUZZ_LIBS_fuzz_oidc := $(shell pkg-config --libs libjwt jansson libcrypto 2>/dev/null)
FUZZ_LIBS_fuzz_json := $(shell pkg-config --libs jansson 2>/dev/null)
FUZZ_LIBS_fuzz_hasnap := $(FUZZ_LIBS_fuzz_json)
FUZZ_LIBS_fuzz_auth := $(FUZZ_LIBS_fuzz_oidc)
FUZZ_LIBS_fuzz_hacrypt := $(shell pkg-config --libs libcrypto 2>/dev/null)
FUZZ_LIBS_fuzz_proxybody := $(FUZZ_LIBS_fuzz_json)
build/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) build/gen/migrations.c $(wildcard healthd/probe.c api/jsoncheck.c api/csv.c api/proxyuri.c api/hasnap.c api/oidc_jwt.c api/token.c api/proxybody.c api/paths.c api/hacrypt.c)
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_FLAGS) -o $@ $< $(COMMON_SRC) $(FUZZ_EXTRA_$*) build/gen/migrations.c $(PKG_LIBS) $(FUZZ_LIBS_$*)
fuzz-bins: $(FUZZ_BINS)
.PHONY: fuzz-bins

# Install: binaries, web files, migrations (also compiled in), units, the env template and the
# failsafe (kept if already there). DESTDIR for packaging; without it, the pgw system user is
# created. Uninstall removes them and, on a real install (no DESTDIR), flushes table inet pgw.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
DATADIR    ?= $(PREFIX)/share/pgw
DOCDIR     ?= $(PREFIX)/share/doc/pgw
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
CREATE_USER ?= $(if $(DESTDIR),0,1)
FLUSH       ?= $(if $(DESTDIR),0,1)
UNITS      := $(wildcard systemd/*.service) systemd/pgw.target
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/web $(DESTDIR)$(DATADIR)/migrations \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/pgw
	install -m 0755 $(BUILD)/bin/pgwctl $(DESTDIR)$(BINDIR)/
	install -m 0755 $(DAEMONS:%=$(BUILD)/bin/%) $(DESTDIR)$(SBINDIR)/
	cp -R web/. $(DESTDIR)$(DATADIR)/web/
	install -m 0644 $(MIGRATIONS) $(DESTDIR)$(DATADIR)/migrations/
	install -m 0644 docs/*.md docs/API_SPEC.yaml $(DESTDIR)$(DOCDIR)/
	for u in $(UNITS); do $(SUBST) $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	install -m 0644 systemd/pgw-forwarder-tproxy.conf $(DESTDIR)$(DATADIR)/
	install -m 0755 compose/pgw-api-healthcheck $(DESTDIR)$(DATADIR)/
	install -d $(DESTDIR)$(DATADIR)/ha
	sed -e 's|/usr/bin/pgwctl|$(BINDIR)/pgwctl|' -e 's|/usr/share/pgw/ha/|$(DATADIR)/ha/|' ha/keepalived.conf.example \
		> $(DESTDIR)$(DATADIR)/ha/keepalived.conf.example
	sed 's|/usr/bin/pgwctl|$(BINDIR)/pgwctl|' ha/pgw-ha-check > $(DESTDIR)$(DATADIR)/ha/pgw-ha-check
	chmod 0755 $(DESTDIR)$(DATADIR)/ha/pgw-ha-check
	@if [ "$(CREATE_USER)" = 1 ] && ! id pgw >/dev/null 2>&1; then \
		useradd --system --home-dir /var/lib/pgw --shell /usr/sbin/nologin pgw && echo "created system user pgw"; fi
	@# root:pgw 0640: the pgw user reads it (pgwctl as pgw, DEPLOYMENT.md), nobody else
	test -e $(DESTDIR)$(SYSCONFDIR)/pgw/pgw.env || install -m 0640 compose/pgw.env.example $(DESTDIR)$(SYSCONFDIR)/pgw/pgw.env
	@# (a package build, DESTDIR set, leaves it to the package's postinst)
	@if [ -z "$(DESTDIR)" ] && getent group pgw >/dev/null; then chgrp pgw $(SYSCONFDIR)/pgw/pgw.env; fi
	test -e $(DESTDIR)$(SYSCONFDIR)/pgw/pgw-failsafe.nft || install -m 0644 systemd/pgw-failsafe.nft $(DESTDIR)$(SYSCONFDIR)/pgw/
	@echo "installed; next: edit $(SYSCONFDIR)/pgw/pgw.env, then systemctl daemon-reload && systemctl enable --now pgw.target"

uninstall:
	@if [ "$(FLUSH)" = 1 ] && [ -x $(SBINDIR)/pgw-agent ]; then $(SBINDIR)/pgw-agent --flush; fi
	rm -f $(DESTDIR)$(BINDIR)/pgwctl $(DAEMONS:%=$(DESTDIR)$(SBINDIR)/%)
	rm -f $(foreach u,$(UNITS),$(DESTDIR)$(UNITDIR)/$(notdir $(u)))
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(SYSCONFDIR)/pgw/pgw-failsafe.nft
	@echo "uninstalled; $(SYSCONFDIR)/pgw/pgw.env and the database in /var/lib/pgw are kept"
