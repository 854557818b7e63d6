#!/usr/bin/env bash
# scripts/test-sanitize.sh (`make test SANITIZE=1`): build caredata with
# AddressSanitizer and UndefinedBehaviorSanitizer, run the whole of
# scripts/test.sh against a cluster of its own that loads the sanitizer
# runtime, and fail on any sanitizer report (or any test failure).  Then
# build and install the ordinary library again.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"

export CAREDATA_SANITIZE=1 SANITIZE=1 with_llvm=no
export CAREDATA_CLUSTER_DIR=/var/tmp/caredata-sanitize-$(echo "$CAREDATA_ROOT" | md5sum | cut -c1-8)
export CAREDATA_PORT=$((CAREDATA_PORT + 3))
export PGPORT=$CAREDATA_PORT
rm -rf "$CAREDATA_CLUSTER_DIR"
make -s clean
scripts/test.sh
rc=$?
reports=$(ls "$CAREDATA_CLUSTER_DIR"/asan.* "$CAREDATA_CLUSTER_DIR"/ubsan.* 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "== sanitizer reports ($reports files):"
  head -50 "$CAREDATA_CLUSTER_DIR"/asan.* "$CAREDATA_CLUSTER_DIR"/ubsan.* 2>/dev/null
fi
grep -c "runtime error:" "$CAREDATA_CLUSTER_DIR/server.log" 2>/dev/null | sed 's/^/runtime errors in the server log: /'
echo "sanitizers: $reports report files"
rm -rf "$CAREDATA_CLUSTER_DIR"

# the ordinary library again, for the ordinary cluster
unset CAREDATA_SANITIZE SANITIZE with_llvm
make -s clean
scripts/build.sh >/dev/null
[ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]
