#!/usr/bin/env bash
# test/security/search_path_lint.sh: a static check that caredata's own SQL
# cannot be redirected by the caller's search_path (issue 22, section 1;
# docs/security.md).  Prints TAP; fails on
#
#   1. an SQL string in src/**/*.c (what C hands to SPI) naming an operator,
#      a function, a type after :: or a relation without its schema
#      (OPERATOR(pg_catalog.=), pg_catalog.format(), ::pg_catalog.int8,
#      caredata.objection);
#   2. a function in src/**/*.sql that is SECURITY DEFINER, a trigger or
#      event trigger, or PL/pgSQL, without SET search_path = pg_catalog,
#      pg_temp (the body is then parsed under caredata's path, whoever
#      calls it);
#   3. an SQL-language function with neither that SET clause nor an
#      SQL-standard body (RETURN / BEGIN ATOMIC: parsed once, at CREATE);
#   4. a function made by dynamic SQL with SECURITY DEFINER and no pinned
#      search_path.
#
# The exceptions are listed below, each with its reason; the hostile
# search_path suite (sql/hostile_search_path.sql) checks them at run time.
set -uo pipefail
cd "$(dirname "$0")/../.."
exec python3 - <<'PY'
import glob, re, sys

# functions that must resolve names the caller's way, and why
EXCEPTIONS = {
    # polymorphic: = for whatever type the caller compares; an SQL-standard
    # body cannot be polymorphic, a SET clause would stop inlining; runs as
    # its caller, with nothing but the caller's rights
    'compare_exact',
    # runs the caller's own query as the caller (its names are the
    # caller's); every name it adds is qualified (checked below)
    '_query_columns',
}
# pg_catalog first; then caredata's own schema at most (only the extension's
# owner creates objects there); pg_temp last (never searched for functions
# or operators)
PINNED = re.compile(r"SET\s+search_path\s*(=|TO)\s*pg_catalog\s*,\s*(caredata\s*,\s*)?pg_temp", re.I)
n = 0
failed = 0
def ok(good, what, detail=()):
    global n, failed
    n += 1
    print(("ok" if good else "not ok") + " %d - %s" % (n, what))
    if not good:
        failed += 1
        for d in detail[:40]:
            print("#   " + d)

# ---- 1. SQL in C ----
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LOCK|TRUNCATE|GRANT|REVOKE)\b", re.I)
KEYWORDS = set("""in exists any all values coalesce nullif greatest least cast row array over filter as on using and or
not where select from join case when then else end operator into set with union except intersect lateral returning by
group order limit table is distinct of variadic if left right inner outer full cross natural""".split())
def c_sql_strings(path):
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    # adjacent string literals joined, as the compiler does
    out = []
    for m in re.finditer(r'(?:"(?:[^"\\\n]|\\.)*"\s*)+', text):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0))
        s = "".join(parts)
        before = text[max(0, m.start() - 120):m.start()]
        if SQL_START.match(s) and re.search(r"SPI_\w+\s*\(|psprintf\s*\(|appendStringInfo\w*\s*\(", before):
            out.append((text.count("\n", 0, m.start()) + 1, s))
    return out
def c_sql_problems(sql):
    p = []
    s = re.sub(r"'(?:[^']|'')*'", "''", sql)                  # literals
    s = re.sub(r"%(?:l{0,2}[sdiu]|[0-9]*\$?s)", " X ", s)       # printf fields
    s = re.sub(r"OPERATOR\s*\(\s*\w+\s*\.\s*[^)\s]+\s*\)", " ", s, flags=re.I)
    for m in re.finditer(r"::\s*(\"?\w+\"?)(\s*\.\s*\w+)?", s):
        if not m.group(2):
            p.append("type without schema: ::" + m.group(1))
    s = re.sub(r"::\s*\"?\w+\"?(\s*\.\s*\w+)?(\[\])?", " ", s)
    s = re.sub(r"\$[0-9]+", " P ", s)
    s = re.sub(r"\bcount\s*\(\s*\*\s*\)", " count() ", s, flags=re.I)
    s = re.sub(r"(SELECT|,)\s*\*", r"\1 ", s, flags=re.I)
    s = re.sub(r"\w+\.\*", " ", s)
    for m in re.finditer(r"[-+*/<>=~!@#%^&|`?]+", s):
        p.append("operator without schema: " + m.group(0))
    for m in re.finditer(r"(\.\s*|\)\s*)?\b(\w+)\s*\(", s):
        # (a schema before it, or a subquery's alias with its column names)
        if not m.group(1) and m.group(2).lower() not in KEYWORDS and m.group(2) != "X":
            p.append("function without schema: " + m.group(2) + "()")
    for m in re.finditer(r"\b(FROM|JOIN|UPDATE|INTO|TABLE)\s+(\w+)\b(\s*\.)?", s, flags=re.I):
        if not m.group(3) and m.group(2) not in ("X",) and m.group(2).lower() not in KEYWORDS:
            p.append("relation without schema: " + m.group(2))
    return p
problems = []
count = 0
for f in sorted(glob.glob("src/**/*.c", recursive=True)):
    for line, sql in c_sql_strings(f):
        count += 1
        for pr in c_sql_problems(sql):
            problems.append("%s:%d: %s" % (f, line, pr))
ok(not problems, "every SQL string in src/**/*.c names its operators, functions, types and relations with their schema (%d strings)" % count, problems)

# ---- 2.-4. functions in src/**/*.sql ----
def functions(path):
    text = open(path).read()
    for m in re.finditer(r"^CREATE FUNCTION\s+(\w+)\.(\w+)\s*\(", text, flags=re.M):
        start = m.start()
        rest = text[m.end():]
        # the header runs to the body: AS $tag$ / AS ' / RETURN / BEGIN ATOMIC
        b = re.search(r"\bAS\s+(\$\w*\$|')|\bRETURN\b|\bBEGIN\s+ATOMIC\b", rest)
        header = rest[:b.start()] if b else rest[:400]
        kind = b.group(0).upper() if b else ""
        tail = ""
        if b and b.group(1):                                    # a quoted body: its attributes may follow it
            q = b.group(1)
            close = rest.find(q, b.end())
            semi = rest.find(";", close + len(q))
            tail = rest[close + len(q):semi]
        yield (path, text.count("\n", 0, start) + 1, m.group(2), header + " " + tail, kind)
bad2, bad3 = [], []
total = 0
for f in sorted(glob.glob("src/**/*.sql", recursive=True)):
    for path, line, name, attrs, kind in functions(f):
        total += 1
        if name in EXCEPTIONS:
            continue
        pinned = bool(PINNED.search(attrs))
        lang = re.search(r"LANGUAGE\s+(\w+)", attrs, re.I)
        lang = lang.group(1).lower() if lang else ""
        elevated = re.search(r"SECURITY\s+DEFINER", attrs, re.I) is not None
        trigger = re.search(r"RETURNS\s+(event_)?trigger\b", attrs, re.I) is not None
        if lang != "c" and (elevated or trigger or lang == "plpgsql") and not pinned:
            bad2.append("%s:%d: %s() (%s%s%s)" % (path, line, name, lang, ", SECURITY DEFINER" if elevated else "",
                                                  ", trigger" if trigger else ""))
        if lang == "sql" and not pinned and not kind.startswith(("RETURN", "BEGIN")):
            bad3.append("%s:%d: %s()" % (path, line, name))
ok(not bad2, "every SECURITY DEFINER, trigger and PL/pgSQL function pins search_path to pg_catalog, pg_temp (%d functions)" % total, bad2)
ok(not bad3, "every SQL function pins search_path or has an SQL-standard body", bad3)

dyn = []
for f in sorted(glob.glob("src/**/*.sql", recursive=True)):
    text = open(f).read()
    for m in re.finditer(r"format\(\s*'CREATE FUNCTION[^;]*?SECURITY DEFINER[^;]*", text):
        if not PINNED.search(m.group(0)):
            dyn.append("%s:%d" % (f, text.count("\n", 0, m.start()) + 1))
ok(not dyn, "every function made by dynamic SQL as SECURITY DEFINER pins search_path", dyn)

# the exceptions: _query_columns qualifies everything it adds to the query
qc = open("src/sdc/table.sql").read()
body = qc[qc.index("CREATE FUNCTION caredata._query_columns("):]
body = body[:body.index("\n$$;")]
inner = re.findall(r"'([^']*)'", body[body.index("BEGIN"):])
probs = [p for s in inner for p in c_sql_problems(s.replace("%s", " X "))]
ok(not probs and "OPERATOR(pg_catalog.=)" in body, "caredata._query_columns() qualifies every name it adds to the caller's query", probs)

print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
