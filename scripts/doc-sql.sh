#!/usr/bin/env bash
# scripts/doc-sql.sh DOC [quickstart [HEADING]]: print the SQL a doc's
# examples hold, so that tests run them as written: every fenced ```sql block
# in order, or, with "quickstart", only the first one after the "## Quick
# start" heading (or after the "## HEADING" heading, matched whole).
# A block holding a line "-- (the figures vary with the master key...)" is
# run with its output sent to /dev/null (\o): its errors still show, and
# the test checks what does not vary by other means.
set -euo pipefail
first=0; heading=
if [ "${2:-}" = quickstart ]; then first=1; heading="## ${3:-Quick start}"; fi
awk -v first="$first" -v h="$heading" '
  function flush() { if (v) print "\\o /dev/null"; for (i = 1; i <= n; i++) print l[i]; if (v) print "\\o" }
  first && !q { if ($0 == h || (h == "## Quick start" && index($0, h) == 1)) q = 1; next }
  !b && /^```sql$/ { b = 1; n = 0; v = 0; next }
  b && /^```$/ { flush(); b = 0; if (first) exit; next }
  b { l[++n] = $0; if ($0 ~ /^-- \(the figures vary with the master key/) v = 1 }' "$1"
