// test/clients/recipient.js: a recipient reads a published view through
// node-postgres (pg from npm) and checks what it may and may not see.
// Prints one line per check: "ok <what>" or "not ok <what>".
// Usage: node recipient.js <connection string> <view> <objector's pseudonym>
const { Client } = require('pg');

const [conn, view, objector] = process.argv.slice(2);
const check = (ok, what) => console.log((ok ? 'ok ' : 'not ok ') + what);

(async () => {
  const client = new Client({ connectionString: conn });
  await client.connect();
  const cols = (await client.query(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'published' AND table_name = $1", [view]))
    .rows.map((r) => r.column_name);
  check(cols.length > 0 && !cols.some((c) => ['nhs_number', 'dob', 'postcode', 'record_id'].includes(c)),
    `node: the view has no identifier column (${cols.join(', ')})`);
  const rows = (await client.query(`SELECT person, count(*) FROM published.${view} GROUP BY person ORDER BY 2 DESC LIMIT 5`)).rows;
  check(rows.length > 0 && rows.every((r) => typeof r.person === 'string'), 'node: pseudonyms arrive as text a tool can group by');
  const hidden = (await client.query(`SELECT count(*)::int AS n FROM published.${view} WHERE person = $1`, [objector])).rows[0].n;
  check(hidden === 0, 'node: the objecting patient is absent');
  for (const [sql, what] of [['SELECT count(*) FROM synth.hospital_episode', 'the raw table'],
    ['SELECT count(*) FROM caredata.pseudonym_map', 'the pseudonym map'],
    ["SELECT caredata.pseudonymise('9434765919'::caredata.nhs_number, 'client_study')", 'a keyed function']]) {
    try {
      await client.query(sql);
      check(false, `node: ${what} is refused`);
    } catch (e) {
      check(e.code === '42501', `node: ${what} is refused`);
    }
  }
  await client.end();
})().catch((e) => { console.log(`not ok node: ${e.message}`); process.exit(1); });
