#!/usr/bin/python3
"""test/clients/recipient.py: a recipient reads a published view through
psycopg2 (Debian's python3-psycopg2) and checks what it may and may not see.
Prints one line per check: "ok <what>" or "not ok <what>".
Usage: recipient.py <conninfo> <view> <objector's pseudonym>"""
import sys
import psycopg2
import psycopg2.errors

conninfo, view, objector = sys.argv[1], sys.argv[2], sys.argv[3]
conn = psycopg2.connect(conninfo)
conn.autocommit = True
cur = conn.cursor()


def check(ok, what):
    print(("ok " if ok else "not ok ") + what)


cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'published' AND table_name = %s",
            (view,))
cols = [r[0] for r in cur.fetchall()]
check(cols and not {"nhs_number", "dob", "postcode", "record_id"} & set(cols),
      "python: the view has no identifier column (%s)" % ", ".join(cols))
cur.execute("SELECT person, count(*) FROM published.%s GROUP BY person ORDER BY 2 DESC LIMIT 5" % view)
rows = cur.fetchall()
check(rows and all(isinstance(r[0], str) for r in rows), "python: pseudonyms arrive as text a tool can group by")
cur.execute("SELECT count(*) FROM published.%s WHERE person = %%s" % view, (objector,))
check(cur.fetchone()[0] == 0, "python: the objecting patient is absent")
for sql, what in [("SELECT count(*) FROM synth.hospital_episode", "the raw table"),
                  ("SELECT count(*) FROM caredata.pseudonym_map", "the pseudonym map"),
                  ("SELECT caredata.pseudonymise('9434765919'::caredata.nhs_number, 'client_study')", "a keyed function")]:
    try:
        cur.execute(sql)
        check(False, "python: %s is refused" % what)
    except psycopg2.errors.InsufficientPrivilege:
        check(True, "python: %s is refused" % what)
