#!/usr/bin/env bash
# test/security/logging.sh: the server log receives no NHS number, under the
# hardened logging configuration docs/security.md recommends (and
# test/cluster.conf applies): statements that fail with a literal number in
# their text, a COPY that fails on a row, a bad bind parameter, and
# caredata's own refusals.  Run by scripts/test.sh against the running
# throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

log="$(scripts/cluster.sh dir)/server.log"
db=caredata_logging
fresh_db
before=$(wc -c < "$log")

# numbers that appear nowhere else: each failure below names one
psql -qX -d $db >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION caredata;
CREATE TABLE t (n caredata.nhs_number, x int);
SELECT '9434765918'::caredata.nhs_number;
SELECT 1/0 FROM (VALUES ('9876543210')) v(n) WHERE n = '9876543210';
COPY t FROM stdin;
4010232137	1
4010232138	2
\.
INSERT INTO t VALUES ('4505577104', 'not a number');
PREPARE p(caredata.nhs_number) AS SELECT $1;
EXECUTE p('6118149139');
SELECT caredata.permitted('4505577104', 'research');
SQL
sleep 0.3
mkdir -p results
tail -c +"$((before + 1))" "$log" > results/logging_tail.txt
[ -s results/logging_tail.txt ]; ok $? "the failures reached the server log ($(grep -c ERROR results/logging_tail.txt) error lines)"
for num in 9434765918 9876543210 4010232138 4505577104 6118149139; do
  spaced="${num:0:3} ${num:3:3} ${num:6:4}"
  ! grep -q -e "$num" -e "$spaced" results/logging_tail.txt
  ok $? "the log does not hold $spaced (or without spaces)"
done
! grep -q -e 'STATEMENT:' -e 'CONTEXT:' -e 'DETAIL:' results/logging_tail.txt
ok $? "no STATEMENT, CONTEXT or DETAIL lines"

drop_db
done_testing
