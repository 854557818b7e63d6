# Makefile for caredata (PGXS)
#
# Layout:
#   src/PILLAR/    one folder per pillar (identifiers, keys, objection, linkage,
#                  sdc, variation, publication, citus), C and SQL side by side,
#                  one header its face to the rest; src/caredata.c (_PG_init)
#                  and src/hooks.c (every hook) at the root, src/base/ below all.
#                  The install script caredata--$(EXTVERSION).sql is assembled
#                  from SQL_SRC, in that order (types before the functions that
#                  use them).  docs/development.md draws the layout.
#   upgrade/       one small script per release step, never edited after release.
#   sql/, expected/  pg_regress suites (REGRESS below).
#   test/pgtap/    pgTAP suites run by pg_prove; test/synthetic/ the generator.
#   scripts/       dependencies, throw-away cluster, demo, test driver.
#   bench/         benchmarks (ratios to baselines measured in the same run).
#
# The two commands a user needs are `make demo` and `make test`; both install
# what is missing, build, install and start a throw-away cluster.

EXTENSION = caredata
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = caredata
OBJS = \
	src/caredata.o \
	src/hooks.o \
	src/base/preload.o \
	$(patsubst %.c,%.o,$(sort $(wildcard src/identifiers/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/keys/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/objection/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/linkage/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/sdc/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/variation/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/publication/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/citus/*.c)))
PGFILEDESC = "caredata - health-data linkage and de-identification"

SQL_SRC = \
	src/caredata.sql \
	src/roles.sql \
	src/publication/audit.sql \
	src/identifiers/nhs_number.sql \
	src/identifiers/postcode.sql \
	src/identifiers/sex.sql \
	src/identifiers/dob.sql \
	src/keys/keys.sql \
	src/keys/pseudonym.sql \
	src/objection/register.sql \
	src/objection/feeds.sql \
	src/objection/protect.sql \
	src/objection/grants.sql \
	src/objection/patient_share.sql \
	src/objection/patient_self.sql \
	src/linkage/compare.sql \
	src/linkage/names.sql \
	src/linkage/tables.sql \
	src/linkage/model.sql \
	src/linkage/merge.sql \
	src/linkage/run.sql \
	src/linkage/inspect.sql \
	src/linkage/grants.sql \
	src/sdc/policy.sql \
	src/sdc/cell_key.sql \
	src/sdc/person_set.sql \
	src/sdc/person_values.sql \
	src/sdc/table.sql \
	src/variation/limits.sql \
	src/variation/fit.sql \
	src/variation/standardise.sql \
	src/variation/funnel.sql \
	src/variation/svg.sql \
	src/variation/patient_comparison.sql \
	src/publication/approval.sql \
	src/publication/publication.sql \
	src/publication/kanon.sql \
	src/publication/reidentify.sql \
	src/citus/citus.sql \
	src/sdc/cell_key_dump.sql \
	src/linkage/projects_dump.sql \
	src/publication/dashboard.sql \
	src/publication/kanon_dump.sql \
	src/objection/patient_dump.sql

# concurrency: isolation specs (specs/), run by make installcheck after REGRESS
ISOLATION = objection_concurrency objection_recheck objection_blocked_rows_horizon

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# released install scripts and their control files (releases/), never edited,
# and one update script per release step (upgrade/)
DATA = $(wildcard releases/$(EXTENSION)--*.sql releases/$(EXTENSION)--*.control upgrade/$(EXTENSION)--*--*.sql)

REGRESS = install nhs_number postcode sex dob pseudonym pseudonym_scheme key_file key_invalidation objection objection_filter objection_probe_agrees objection_lookahead objection_local_copy objection_blocked_rows objection_fast_qual objection_parallel objection_hardening objection_reinstall objection_protection objection_drop objection_feed_bulk citus_single_node linkage linkage_run linkage_quickstart linkage_quality linkage_progress linkage_twins linkage_names linkage_fields linkage_names_quickstart linkage_projects linkage_incremental linkage_engine sdc sdc_table sdc_quickstart sdc_policy_role sdc_magnitudes sdc_cell_key sdc_attacks variation variation_disclosure variation_quickstart publication publication_quickstart publication_kanon publication_reidentify publication_approval user_guide publication_audit publication_bi objection_patient_share objection_patient_self variation_patient hostile_search_path objection_patient_quickstart

PG_CONFIG ?= pg_config
# warnings as PostgreSQL builds extensions (-Wno-unused-parameter: the server
# headers trip -Wextra otherwise); errors in CI only (CI=true), so a newer
# compiler's new warning does not stop a DBA's build
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter $(if $(filter true,$(CI)),-Werror)
# a pillar includes another's face as "pillar/pillar.h"
PG_CPPFLAGS = -I$(srcdir)/src
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the headers are few and shared: rebuild every object when one changes
# (a stale object compiled against an old struct layout is a silent bug)
$(OBJS): $(wildcard src/*.h src/*/*.h)

SHLIB_LINK += -lcrypto

# scripts/generate-key.sh, the master secret's generator the runbook uses,
# installed beside the server's programs as caredata-generate-key (the
# package, PGXN and source routes alike)
install: install-generate-key
uninstall: uninstall-generate-key
.PHONY: install-generate-key uninstall-generate-key
install-generate-key:
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_SCRIPT) $(srcdir)/scripts/generate-key.sh '$(DESTDIR)$(bindir)/caredata-generate-key'
uninstall-generate-key:
	rm -f '$(DESTDIR)$(bindir)/caredata-generate-key'

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SRC) Makefile
	{ printf '%s\n' '/* $(EXTENSION)--$(EXTVERSION).sql: caredata $(EXTVERSION), install script */' '-- Generated by the Makefile from the SQL_SRC files under src/; edit those.' '' \
	    '-- complain if script is sourced in psql, rather than via CREATE EXTENSION' \
	    '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit' ''; \
	  for f in $(SQL_SRC); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done; } > $@

.PHONY: deps demo test bench start stop fuzz deb dist

deps:
	scripts/install-deps.sh test

demo:
	scripts/demo.sh

# PG=17: the same, against PostgreSQL 17 in a Debian 13 chroot (scripts/pg-chroot.sh);
# SANITIZE=1: against a server and caredata built with ASan and UBSan (scripts/sanitize.sh)
test:
	$(if $(filter-out 15,$(or $(PG),15)),scripts/pg-chroot.sh $(PG) test,$(if $(SANITIZE),scripts/sanitize.sh,scripts/test.sh))

bench:
	bench/run.sh

# the Debian package postgresql-NN-caredata, into dist/ (scripts/package.sh);
# test/release/deb_chroot.sh installs it on a stock Debian 12 (a bookworm
# chroot made once by test/release/deb_chroot.sh --setup; make test runs it,
# or says it skipped it for want of the chroot)
deb:
	scripts/package.sh

# the archive PGXN accepts: META.json and the committed tree of HEAD, in
# one directory caredata-VERSION/, into dist/
dist:
	mkdir -p dist
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ -o dist/$(EXTENSION)-$(EXTVERSION).zip HEAD
	@echo dist/$(EXTENSION)-$(EXTVERSION).zip

# fuzzing, which `make test` leaves out but for a short SQL-level round:
# the C parsers and array functions under libFuzzer (FUZZ_SECONDS each),
# every caredata function called as every role with boundary arguments
# (FUZZ_ROUNDS, FUZZ_SEED), then random SQL against the extension
# (QUERIES, sqlsmith); the last two on a cluster of their own
# (scripts/side-cluster.sh), never the one make demo left running
fuzz:
	scripts/build.sh fuzz
	test/fuzz/parsers.sh $(or $(FUZZ_SECONDS),60)
	side=$$(scripts/side-cluster.sh start fuzz) && set -- $$side && \
	  export CAREDATA_CLUSTER_DIR=$$1 CAREDATA_PORT=$$2 && \
	  CAREDATA_FUZZ_SEED=$(or $(FUZZ_SEED),0.$$RANDOM) test/fuzz/sql_calls.sh $(or $(FUZZ_ROUNDS),400) 4194304 && \
	  test/fuzz/sqlsmith.sh $(or $(QUERIES),50000); \
	  rc=$$?; scripts/side-cluster.sh stop fuzz; exit $$rc

start:
	scripts/build.sh && scripts/cluster.sh start

stop:
	scripts/cluster.sh stop
