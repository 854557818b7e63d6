#!/usr/bin/python3
"""test/clients/patient.py: a patient portal reaches caredata through psycopg2
(Debian's python3-psycopg2), the way docs/objections.md "How patients reach
it" describes: each signed-in person connects as their own login role (the
database authenticates them; the portal holds no role that can become
another patient).  The patient reads their summary and shares their records
with their carer; the carer opens the grant and reads; the patient revokes.
Prints one line per check: "ok <what>" or "not ok <what>".
Usage: patient.py <conninfo as the patient> <conninfo as the carer> <table>"""
import sys
import psycopg2
import psycopg2.errors

patient_dsn, carer_dsn, table = sys.argv[1], sys.argv[2], sys.argv[3]


def check(ok, what):
    print(("ok " if ok else "not ok ") + what)


def connect(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True       # each call its own transaction: a grant opened is committed
    return conn, conn.cursor()


patient, p = connect(patient_dsn)
carer, c = connect(carer_dsn)

p.execute("SELECT count(*) FROM %s" % table)
own = p.fetchone()[0]
p.execute("SELECT caredata.my_summary()")
summary = p.fetchone()[0]           # jsonb arrives as a dict
check(isinstance(summary, dict) and summary["records"][0]["rows"] == own,
      "python: the patient's summary counts their own %d rows" % own)

p.execute("SELECT caredata.share_my_records(%s::regrole, %s, now() + interval '1 day', %s::regclass[])",
          ("client_carer", "my carer books my appointments", [table]))
share = p.fetchone()[0]
check(share is not None, "python: the patient shares their records with the carer")

c.execute("SELECT count(*) FROM caredata.open_shared_records()")
check(c.fetchone()[0] == 1, "python: the carer opens the grant (audited)")
c.execute("SELECT count(*), count(DISTINCT nhs_number) FROM %s" % table)
rows, people = c.fetchone()
check(rows == own and people == 1, "python: the carer sees the patient's %d rows and no one else's" % rows)

# a patient's functions take no NHS number: the portal cannot ask for someone else
try:
    c.execute("SELECT caredata.my_summary()")
    check(False, "python: the carer cannot read the patient's summary")
except psycopg2.errors.InsufficientPrivilege:
    check(True, "python: the carer cannot read the patient's summary")

p.execute("SELECT caredata.revoke_my_share(%s)", (share,))
c.execute("SELECT count(*) FROM %s" % table)
check(c.fetchone()[0] == 0, "python: after the revocation the carer sees nothing")
p.execute("SELECT count(*) FROM caredata.my_share_audit() WHERE share_id = %s", (share,))
check(p.fetchone()[0] == 3, "python: the patient sees the grant, its opening and its revocation in the audit")
