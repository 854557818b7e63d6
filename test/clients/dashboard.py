#!/usr/bin/python3
"""test/clients/dashboard.py: a BI tool reads an aggregate-only publication
(caredata.publish_aggregates) through psycopg2, as a dashboard would, and
checks what it gets.  Prints one line per check: "ok <what>" or "not ok <what>".
Usage: dashboard.py <conninfo> <view> <record-level view>"""
import sys
import psycopg2
import psycopg2.errors

conninfo, view, rows_view = sys.argv[1], sys.argv[2], sys.argv[3]
conn = psycopg2.connect(conninfo)
conn.autocommit = True
cur = conn.cursor()


def check(ok, what):
    print(("ok " if ok else "not ok ") + what)


cur.execute("SELECT * FROM published.%s ORDER BY unit" % view)
cols = [d[0] for d in cur.description]
rows = [dict(zip(cols, r)) for r in cur.fetchall()]
check(rows and not {"person", "nhs_number", "dob", "postcode", "record_id"} & set(cols),
      "python: one row per unit and no record-level column (%d units; %s)" % (len(rows), ", ".join(cols)))
shown = [r for r in rows if r["persons"] is not None]
check(shown and all(isinstance(r["persons"], int) and r["persons"] % 5 == 0 for r in shown),
      "python: people arrive as integers, rounded to 5 as the policy in force (nhs_hes) says")
check(all(r["outcome_persons"] is None or r["outcome_persons"] == 0 or (r["outcome_persons"] > 7 and r["outcome_persons"] % 5 == 0) for r in rows)
      and any(r["outcome_persons"] is None for r in rows),
      "python: outcome counts of 1 to 7 are suppressed (NULL), the rest rounded (0 stays 0 under nhs_hes)")
check(all(r["provider_code_label"].startswith("Trust ") for r in rows), "python: units carry their labels, not codes")
drawn = [r for r in rows if not r["suppressed"]]
check(drawn and all(isinstance(r["funnel_ratio"], float) and r["funnel_lower_998"] <= r["funnel_upper_998"]
                    and r["funnel_band"] in ("within", "above 95%", "above 99.8%", "below 95%", "below 99.8%") for r in drawn),
      "python: funnel rows arrive as numbers with limits and a band (%d drawn)" % len(drawn))
check(all(r["funnel_band"] is None and r["funnel_ratio"] is None for r in rows if r["suppressed"]),
      "python: a suppressed unit has no ratio and no band")
for sql, what in [("SELECT count(*) FROM published.%s" % rows_view, "a record-level view"),
                  ("SELECT count(*) FROM synth.hospital_episode", "the raw table"),
                  ("SELECT caredata.sdc_apply(3, 'opensafely_midpoint6')", "a policy of its own choosing")]:
    try:
        cur.execute(sql)
        check(False, "python: %s is refused" % what)
    except psycopg2.errors.InsufficientPrivilege:
        check(True, "python: %s is refused" % what)
