#!/usr/bin/env bash
# test/harness/deps.sh: what `make demo` and `make test` install (issue 26).
# `make demo` installs only what building and running the demo needs (no
# browser, no fuzzer, no Node.js or npm, no pgTAP); `make test` adds the
# test tools; every apt-get waits for the package lock instead of failing
# at once, and an update refused for the lists' lock is tried again.  Runs
# scripts/install-deps.sh from a copy of scripts/ with fake apt-get,
# dpkg-query and npm first on the PATH (nothing is installed).  Prints TAP.
. "$(dirname "$0")/../lib.bash"

# packages only the tests or the fuzzers use: none may be in the demo's list
test_only='chromium|sqlsmith|clang|libclang-rt|nodejs|npm|pgtap|python3-psycopg2|python3-pil|fonts-dejavu'
demo=$(scripts/install-deps.sh demo --list)
tests=$(scripts/install-deps.sh test --list)
fuzz=$(scripts/install-deps.sh fuzz --list)
bad=$(echo "$demo" | grep -E "$test_only" | tr '\n' ' ')
[ -n "$demo" ] && [ -z "$bad" ]; ok $? "the demo's packages hold no test tool ($(echo $demo | tr ' ' ','))${bad:+: $bad}"
# (pgtap for the server's major version: 15, or 17 under make test PG=17)
for p in 'postgresql-[0-9]+-pgtap' libtap-parser-sourcehandler-pgtap-perl chromium nodejs npm python3-psycopg2; do
  echo "$tests" | grep -qxE "$p" || { missing="${missing:-} $p"; }
done
[ -z "${missing:-}" ]; ok $? "make test's packages hold the test tools${missing:+ (missing:$missing)}"
! echo "$tests" | grep -qE 'sqlsmith|clang'; ok $? "the fuzzers' tools (sqlsmith, clang) are make fuzz's, not make test's"
echo "$fuzz" | grep -q sqlsmith && echo "$fuzz" | grep -q '^clang-'; ok $? "make fuzz's packages hold sqlsmith and clang"

# install-deps.sh run for real against fakes: which commands it runs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/scripts" "$work/bin"
cp scripts/env.sh scripts/install-deps.sh "$work/tree/scripts/"
cat > "$work/bin/apt-get" <<'FAKE'
#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
# the lists' lock held by another apt, once
case "$*" in *update*) if [ ! -f "$FAKE_LOG.locked" ]; then touch "$FAKE_LOG.locked"
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2; exit 100; fi ;; esac
exit 0
FAKE
printf '#!/bin/sh\nexit 1\n' > "$work/bin/dpkg-query"           # nothing installed
printf '#!/bin/sh\necho "npm $*" >> "$FAKE_LOG"\n' > "$work/bin/npm"
printf '#!/bin/sh\nexec "$@"\n' > "$work/bin/sudo"
chmod +x "$work/bin/"*
run() { rm -f "$work/log" "$work/log.locked"; FAKE_LOG=$work/log PATH="$work/bin:$PATH" bash "$work/tree/scripts/install-deps.sh" "$1" >"$work/out" 2>&1; }

run demo; rc=$?
[ $rc = 0 ] && grep -q '^apt-get .* update' "$work/log" && grep -q '^apt-get .* install' "$work/log"
ok $? "make demo's install-deps runs apt-get update, then install (status $rc)"
[ "$(grep -c ' update' "$work/log")" = 2 ] && grep -q 'waiting for the package lock' "$work/out"
ok $? "an update refused for the lists' lock waits and is tried again"
inst=$(grep '^apt-get .* install' "$work/log" | sed 's/.*--no-install-recommends //')
bad=$(echo "$inst" | tr ' ' '\n' | grep -E "$test_only" | tr '\n' ' ')
[ -z "$bad" ]; ok $? "make demo installs no test tool${bad:+ ($bad)}"
! grep -q '^npm' "$work/log"; ok $? "make demo runs no npm install"
nolock=$(grep '^apt-get' "$work/log" | grep -vc 'DPkg::Lock::Timeout=[1-9]')
[ "$nolock" = 0 ]; ok $? "every apt-get call waits for the package lock (DPkg::Lock::Timeout)"

run test
grep -q '^apt-get .* install .*chromium' "$work/log" && grep -q '^npm install' "$work/log"
ok $? "make test's install-deps installs the test tools and node-postgres"

# every apt-get invocation in the scripts goes through apt_get (scripts/env.sh)
# or carries the lock timeout itself
raw=$(grep -nE '(^|[;&|({]|then|do|\s)apt-get\s+(-[^ ]+\s+)*(update|install|source|upgrade|dist-upgrade|remove|purge|build-dep)\b' \
        scripts/*.sh bench/*.sh .ci/run Makefile 2>/dev/null | grep -v '^[^:]*:[0-9]*:\s*#' | grep -v 'DPkg::Lock::Timeout')
[ -z "$raw" ]; ok $? "no apt-get call in scripts/ without the lock timeout${raw:+: $raw}"

done_testing
