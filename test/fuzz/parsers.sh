#!/usr/bin/env bash
# test/fuzz/parsers.sh [seconds]: libFuzzer (clang, with AddressSanitizer
# and UndefinedBehaviorSanitizer) on the C input parsers, one target each
# (test/fuzz/fuzz_*.c, seed corpus in test/fuzz/corpus/): the NHS number's
# text and binary input, the pseudonym's text input and token codec,
# postcode, date-of-birth and sex parsing, the linkage string comparators,
# the name and address standardisers (names.c),
# the text and binary input of the disclosure-control states
# person_set and person_values, and the C functions that take arrays and
# sizes: tables with margins (checks, bounds, secondary suppression) and the
# Fellegi-Sunter model (link_em, link_pattern_weights, link_weight).
# The SQL-level fuzzer (sql_calls.sh) calls them all through the server
# as every role.  `make fuzz` runs it (60
# seconds each; 5 by default), not `make test`.  Passes when no target crashed, leaked or
# broke its invariant.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

secs=${1:-${CAREDATA_FUZZ_SECONDS:-5}}
clang=$(command -v clang-19 || command -v clang-14 || command -v clang)
out=results/fuzz
mkdir -p "$out"
for src in test/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c); t=${t#fuzz_}
  if ! "$clang" -w -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -I"$($PG_CONFIG --includedir-server)" \
       "$src" test/fuzz/server_stubs.c -o "$out/fuzz_$t" 2> "$out/$t.build.log"; then
    ok 1 "$t: the fuzz target builds (see $out/$t.build.log)"; continue
  fi
  rm -rf "$out/corpus_$t"; mkdir -p "$out/corpus_$t"
  (cd "$out" && ./fuzz_$t -max_total_time="$secs" -artifact_prefix="$t-" "corpus_$t" "$CAREDATA_ROOT/test/fuzz/corpus/$t" > "$t.log" 2>&1)
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs' "$out/$t.log" | tail -1)
  ok $rc "$t: ${runs:-no runs} in ${secs}s, no crash, leak or broken invariant"
done
done_testing
