#!/usr/bin/env bash
# scripts/doc-sql.sh DOC [quickstart [HEADING]]: print the SQL a doc's
# examples hold, so that tests run them as written: every fenced ```sql block
# in order, or, with "quickstart", only the first one after the "## Quick
# start" heading (or after the "## HEADING" heading, matched whole).
set -euo pipefail
if [ "${2:-}" = quickstart ]; then
  heading="## ${3:-Quick start}"
  awk -v h="$heading" '$0 == h || (h == "## Quick start" && index($0, h) == 1) {q = 1; next}
                       q && /^```sql$/ {b = 1; next} b && /^```$/ {exit} b {print}' "$1"
else
  awk '/^```sql$/ {b = 1; next} b && /^```$/ {b = 0; next} b {print}' "$1"
fi
