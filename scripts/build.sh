#!/usr/bin/env bash
# scripts/build.sh [demo|test|fuzz]: dependencies (scripts/install-deps.sh:
# the demo's by default, the test tools with test), build, install into the
# server.  The common first half of `make demo`, `make test` and bench/run.sh.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"
scripts/install-deps.sh "${1:-demo}"
make -s all
$SUDO make -s install >/dev/null
echo "build: caredata built and installed into $($PG_CONFIG --pkglibdir)"
