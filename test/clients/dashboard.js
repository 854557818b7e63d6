// test/clients/dashboard.js: a BI tool reads an aggregate-only publication
// (caredata.publish_aggregates) through node-postgres and checks what it
// gets.  Prints one line per check: "ok <what>" or "not ok <what>".
// Usage: node dashboard.js <connection string> <view> <record-level view>
const { Client } = require('pg');

const [conn, view, rowsView] = process.argv.slice(2);
const check = (ok, what) => console.log((ok ? 'ok ' : 'not ok ') + what);

(async () => {
  const client = new Client({ connectionString: conn });
  await client.connect();
  const res = await client.query(`SELECT * FROM published.${view} ORDER BY unit`);
  const cols = res.fields.map((f) => f.name);
  const rows = res.rows;
  check(rows.length > 0 && !cols.some((c) => ['person', 'nhs_number', 'dob', 'postcode', 'record_id'].includes(c)),
    `node: one row per unit and no record-level column (${rows.length} units)`);
  // bigint arrives as a string in node-postgres: a dashboard parses it
  const shown = rows.filter((r) => r.persons !== null);
  check(shown.length > 0 && shown.every((r) => Number(r.persons) % 5 === 0),
    'node: people arrive rounded to 5, as the policy in force (nhs_hes) says');
  check(rows.some((r) => r.outcome_persons === null)
    && rows.every((r) => r.outcome_persons === null || Number(r.outcome_persons) === 0 || Number(r.outcome_persons) > 7),
    'node: outcome counts of 1 to 7 are suppressed (null)');
  check(rows.every((r) => r.provider_code_label.startsWith('Trust ')), 'node: units carry their labels, not codes');
  const drawn = rows.filter((r) => !r.suppressed);
  check(drawn.length > 0 && drawn.every((r) => typeof r.funnel_ratio === 'number' && r.funnel_lower_998 <= r.funnel_upper_998),
    `node: funnel rows arrive as numbers with limits (${drawn.length} drawn)`);
  for (const [sql, what] of [[`SELECT count(*) FROM published.${rowsView}`, 'a record-level view'],
    ['SELECT count(*) FROM synth.hospital_episode', 'the raw table']]) {
    try {
      await client.query(sql);
      check(false, `node: ${what} is refused`);
    } catch (e) {
      check(e.code === '42501', `node: ${what} is refused`);
    }
  }
  await client.end();
})().catch((e) => { console.log(`not ok node: ${e.message}`); process.exit(1); });
