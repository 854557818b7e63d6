#!/usr/bin/env bash
# scripts/install-deps.sh: install what caredata needs to build, test and
# benchmark on Debian 12 (PostgreSQL 15) or Debian 13 (PostgreSQL 17, in the
# chroot scripts/pg-chroot.sh makes), idempotently.  Runs apt-get only when a
# package is missing.  As root, or through sudo.  CAREDATA_PG picks the
# PostgreSQL major version (15 by default).
set -euo pipefail
. "$(dirname "$0")/env.sh"

pg=${CAREDATA_PG:-15}
# the clang whose libFuzzer runtime test/fuzz/parsers.sh uses
case "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" in
  trixie) llvm=19 ;;
  *) llvm=14 ;;
esac

PACKAGES=(
  postgresql-$pg             # the server, and its contrib modules (pgcrypto: benchmark baselines)
  postgresql-server-dev-$pg  # pg_config, PGXS, server headers
  postgresql-$pg-pgtap       # pgTAP
  libtap-parser-sourcehandler-pgtap-perl  # pg_prove
  libssl-dev                 # OpenSSL headers (-lcrypto)
  openssl                    # scripts/generate-key.sh
  make
  gcc
  python3-psycopg2           # test/security/clients.sh: a Python client
  chromium                   # test/variation/funnel_svg.sh: renders the funnel plot
  fonts-dejavu-core          # ... with a font the SVG names
  python3-pil                # ... and reads the PNG back
  sqlsmith                   # test/fuzz/sqlsmith.sh: random SQL, no crash
  clang-$llvm                # test/fuzz/parsers.sh: libFuzzer targets ...
  libclang-rt-$llvm-dev      # ... and the fuzzer and sanitizer runtimes
)

# Node.js and npm for the Node client test: Debian's, unless some are there
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi
ensure_packages install-deps "${PACKAGES[@]}"

# node-postgres for test/clients (from the npm registry, once)
cd "$CAREDATA_ROOT"
if [ ! -d test/clients/node_modules/pg ]; then
  echo "install-deps: npm install (test/clients)"
  npm install --prefix test/clients --no-audit --no-fund --silent >/dev/null
fi
