#!/usr/bin/env bash
# scripts/install-deps.sh [demo|test|fuzz] [--list]: install what caredata
# needs on Debian 12 (PostgreSQL 15) or Debian 13 (PostgreSQL 17, in the
# chroot scripts/pg-chroot.sh makes), idempotently: apt-get runs (update,
# then install) only when a package is missing, and waits for the package
# lock another apt holds (scripts/env.sh, apt_get).  As root, or through
# sudo.  CAREDATA_PG picks the PostgreSQL major version (15 by default).
#
#   demo  (the default; make demo, make start, make bench): build caredata
#         and run the demo, nothing else
#   test  (make test): demo's, and the tools the test suites drive: pgTAP,
#         pg_prove, a Python and a Node.js client (node-postgres from npm),
#         a browser that renders the funnel plot
#   fuzz  (make fuzz): test's, and sqlsmith, clang and the libFuzzer runtime
#
# --list prints the profile's Debian packages, one a line, and installs
# nothing (test/harness/deps.sh checks the demo's holds no test tool).
set -euo pipefail
. "$(dirname "$0")/env.sh"

profile=demo; list=
for a in "$@"; do
  case "$a" in
    demo|test|fuzz) profile=$a ;;
    --list) list=1 ;;
    *) echo "usage: $0 [demo|test|fuzz] [--list]" >&2; exit 2 ;;
  esac
done

pg=${CAREDATA_PG:-15}
# the clang whose libFuzzer runtime test/fuzz/parsers.sh uses
case "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" in
  trixie) llvm=19 ;;
  *) llvm=14 ;;
esac

DEMO_PACKAGES=(
  postgresql-$pg             # the server, and its contrib modules (pgcrypto: benchmark baselines)
  postgresql-server-dev-$pg  # pg_config, PGXS, server headers
  libssl-dev                 # OpenSSL headers (-lcrypto)
  openssl                    # scripts/generate-key.sh
  make
  gcc
)
TEST_PACKAGES=(
  postgresql-$pg-pgtap       # pgTAP
  libtap-parser-sourcehandler-pgtap-perl  # pg_prove
  python3-psycopg2           # test/security/clients.sh: a Python client
  chromium                   # test/variation/funnel_svg.sh: renders the funnel plot
  fonts-dejavu-core          # ... with a font the SVG names
  python3-pil                # ... and reads the PNG back
)
# Node.js and npm for the Node client test: Debian's, unless some are there
if [ -n "$list" ] || ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  TEST_PACKAGES+=(nodejs npm)
fi
FUZZ_PACKAGES=(
  sqlsmith                   # test/fuzz/sqlsmith.sh: random SQL, no crash
  clang-$llvm                # test/fuzz/parsers.sh: libFuzzer targets ...
  libclang-rt-$llvm-dev      # ... and the fuzzer and sanitizer runtimes
)

PACKAGES=("${DEMO_PACKAGES[@]}")
case "$profile" in
  test) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
  fuzz) PACKAGES+=("${TEST_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}") ;;
esac

if [ -n "$list" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi
ensure_packages "install-deps ($profile)" "${PACKAGES[@]}"

# node-postgres for test/clients (from the npm registry, once)
if [ "$profile" != demo ]; then
  cd "$CAREDATA_ROOT"
  if [ ! -d test/clients/node_modules/pg ]; then
    echo "install-deps: npm install (test/clients)"
    npm install --prefix test/clients --no-audit --no-fund --silent >/dev/null
  fi
fi
