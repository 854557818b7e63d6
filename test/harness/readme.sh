#!/usr/bin/env bash
# test/harness/readme.sh: README.md says, next to the two commands, how to
# choose another port and exactly what a re-run does, and the demo's size
# it gives is the one scripts/demo.sh uses (issue 26).  Static.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

# the "## Two commands" section
two=$(awk '/^## Two commands/ {s = 1; next} s && /^## / {exit} s' README.md)
echo "$two" | grep -q '^make demo' && echo "$two" | grep -q '^make test'; ok $? "README.md's Two commands section holds make demo and make test"
echo "$two" | grep -q 'make demo CAREDATA_PORT=[0-9]' && echo "$two" | grep -q 'make stop'
ok $? "... and how to choose another port (CAREDATA_PORT), for make stop too"
echo "$two" | grep -q 'already running .*unchanged' && echo "$two" | grep -q 'restarted ... for' &&
  echo "$two" | grep -q 'caredata_demo_next'
ok $? "... and what a re-run does to the server and to sessions on caredata_demo"
people=$(sed -n 's/^people=\${CAREDATA_DEMO_PEOPLE:-\([0-9]*\)}/\1/p' scripts/demo.sh)
shown=$(echo "$people" | sed -E ':a; s/([0-9])([0-9]{3})(,|$)/\1,\2\3/; ta')
echo "$two" | grep -q "generate $shown synthetic people"; ok $? "... and the demo's size, $shown people, which scripts/demo.sh uses"
# the messages the README quotes are scripts/cluster.sh's
grep -q 'already running on 127.0.0.1:$CAREDATA_PORT ($data), unchanged (sessions kept)' scripts/cluster.sh &&
  grep -q 'restarted on 127.0.0.1:$CAREDATA_PORT ($data) for $why: sessions were ended' scripts/cluster.sh
ok $? "the messages README.md quotes are scripts/cluster.sh's"
done_testing
