#!/usr/bin/env bash
# test/harness/roles.sh: the docs' examples and `make test` never create a
# role of the same name (issue 26).  Roles are cluster-wide: a reader who
# runs a doc's Quick start on the demo cluster (making role study_a) must
# not break the next `make test` on that cluster.  Collects the roles the
# docs' ```sql blocks create (scripts/doc-sql.sh) and the roles the tests
# create: written in sql/, specs/ and test/, and those of the doc blocks
# the suites run, as the suites run them (the \! lines of sql/*.sql that
# extract them).  Static, no cluster.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

created() { grep -oiE 'CREATE ROLE\s+"?[a-z_][a-z0-9_]*' | sed -E 's/^[Cc][Rr][Ee][Aa][Tt][Ee] [Rr][Oo][Ll][Ee]\s+"?//' | tr 'A-Z' 'a-z' | sort -u; }

docs=$(for d in README.md docs/*.md; do scripts/doc-sql.sh "$d"; done | created)
[ -n "$docs" ]; ok $? "the docs' examples create roles: $(echo $docs)"

written=$(cat sql/*.sql specs/*.spec test/*/*.sql test/*/*.sh 2>/dev/null | created)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ran=
for f in sql/*.sql; do
  grep -h '^\\! .*scripts/doc-sql.sh' "$f" | while IFS= read -r line; do
    cmd=${line#\\! }
    out=$(echo "$cmd" | sed -n 's/.*> *\([^ ]*\)$/\1/p')
    bash -c "$cmd" && cat "$out"
  done
done > "$work/blocks.sql"
blocks=$(created < "$work/blocks.sql")
[ -s "$work/blocks.sql" ]; ok $? "the doc blocks the suites run are extracted as they run them ($(wc -l < "$work/blocks.sql") lines, roles: $(echo $blocks))"

clash=$(comm -12 <(echo "$docs") <(printf '%s\n' $written $blocks | sort -u) | tr '\n' ' ')
[ -z "$clash" ]; ok $? "no test creates a role a doc's example creates${clash:+ (both: $clash)}"
# the suites that run a doc's block rename its roles to regress_*
bad=$(echo "$blocks" | grep -v '^regress_' | tr '\n' ' ')
[ -z "$bad" ]; ok $? "roles in the doc blocks the suites run are regress_*${bad:+ (not: $bad)}"

done_testing
