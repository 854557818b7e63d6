#!/usr/bin/env bash
# test/variation/funnel_svg.sh: the funnel plot as a reader sees it.
# caredata.funnel_svg() draws 20 units, two of them planted at twice their
# expected deaths.  (1) Headless Chromium renders the SVG to PNG, which must
# be the canvas's size, in many colours, with the outliers' and the limits'
# colours on it.  (2) The SVG is parsed: every drawn point of the four limit
# curves is mapped back through the plot's axes and compared with
# caredata.funnel_limit() at that size, and every unit's point with its
# ratio from caredata.funnel(); the labels are the outliers on the true
# counts, and a footnote says the points are the published ones (issue 24).
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

# "ok - ..." / "not ok - ..." lines from a checker, as TAP
report() { local line; while IFS= read -r line; do
             case "$line" in "ok - "*) ok 0 "${line#ok - }" ;; "not ok - "*) ok 1 "${line#not ok - }" ;; *) ok 1 "$line" ;; esac
           done < "$1"; }

db=caredata_svg
out=results/funnel_svg
mkdir -p "$out"
rm -f "$out"/*
fresh_db
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION caredata;
CREATE TABLE units (unit text, observed double precision, expected double precision);
INSERT INTO units VALUES
  ('U01', 113, 132.91), ('U02', 204, 216.67), ('U03', 34, 27.91), ('U04', 67, 32.59), ('U05', 42, 40.83),
  ('U06', 96, 93.18), ('U07', 358, 379.35), ('U08', 36, 23.4), ('U09', 110, 119.4), ('U10', 298, 327.37),
  ('U11', 241, 234.73), ('U12', 67, 29.8), ('U13', 23, 28.54), ('U14', 126, 129.09), ('U15', 178, 184.01),
  ('U16', 92, 101.42), ('U17', 252, 212.45), ('U18', 320, 392.17), ('U19', 203, 170.16), ('U20', 27, 20.49);
SQL
q="SELECT unit, observed, expected FROM units"
psql -qXAt -d $db -c "SELECT caredata.funnel_svg('$q', '30-day mortality by provider', policy => 'opensafely')" > "$out/funnel.svg"
[ -s "$out/funnel.svg" ]; ok $? "funnel_svg returns the plot"
# the numbers the plot must show: the fit, and each unit's ratio
psql -qXAt -F ' ' -d $db -c "SELECT (fit).target, (fit).tau2, unit, denominator, ratio, outlier FROM caredata.funnel('$q', policy => 'opensafely')" > "$out/units.txt"

# 1. rendered by a browser
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,620 \
  --screenshot="$PWD/$out/funnel.png" "file://$PWD/$out/funnel.svg" >/dev/null 2>&1
[ -s "$out/funnel.png" ]; ok $? "headless Chromium renders it to PNG"
/usr/bin/python3 - "$out/funnel.png" > "$out/png.tap" 2>&1 <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
colours = im.getcolors(maxcolors=1 << 20)
def has(rgb, tol=40):
    return any(sum(abs(a - b) for a, b in zip(c, rgb)) <= tol for _, c in colours)
def say(cond, what):
    print(('ok - ' if cond else 'not ok - ') + what)
say(im.size == (900, 620), "the PNG is the plot's size (%dx%d)" % im.size)
say(len(colours) > 2, 'it has more than two colours (%d)' % len(colours))
drawn = sum(k for k, c in colours if c != (255, 255, 255))
say(drawn > 900 * 620 * 0.02, 'more than 2%% of it is drawn on (%d pixels)' % drawn)
say(has((0xFF, 0x7F, 0x0E)), 'the outliers are drawn, in their colour')
say(has((0x5B, 0x3A, 0x8E)) and has((0x1F, 0x77, 0xB4)), "the 99.8% and 95% limits are drawn, in theirs")
PY
report "$out/png.tap"

# 2. the drawing against the numbers: each curve's points, mapped back to
# (size, limit), must lie on caredata.funnel_limit() to within half a pixel
/usr/bin/python3 - "$out/funnel.svg" "$out/units.txt" "$out/curves.sql" > "$out/svg.tap" 2>&1 <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {'s': 'http://www.w3.org/2000/svg'}
svg = ET.parse(sys.argv[1]).getroot()
def say(cond, what):
    print(('ok - ' if cond else 'not ok - ') + what)
g = svg.find(".//s:g[@id='plot']", ns)
a = {k: float(g.get('data-' + k)) for k in ('x-min', 'x-max', 'y-min', 'y-max', 'px-left', 'px-right', 'px-top', 'px-bottom')}
to_x = lambda px: a['x-min'] + (px - a['px-left']) / (a['px-right'] - a['px-left']) * (a['x-max'] - a['x-min'])
to_y = lambda py: a['y-min'] + (a['px-bottom'] - py) / (a['px-bottom'] - a['px-top']) * (a['y-max'] - a['y-min'])
curves = g.findall(".//s:polyline[@class='limit']", ns)
say(sorted(c.get('data-limit') for c in curves) == ['lower_95', 'lower_998', 'upper_95', 'upper_998'], 'four limit curves, 95% and 99.8%, lower and upper')
rows = []
for c in curves:
    pts = [tuple(map(float, p.split(','))) for p in c.get('points').split()]
    rows += [(c.get('data-limit'), float(c.get('data-probability')), px, py, to_x(px)) for px, py in pts]
say(min(sum(1 for r in rows if r[0] == c.get('data-limit')) for c in curves) >= 100, 'each curve has 100 points or more')
# the checker's SQL: the limit at each point's size, in pixels, next to the drawn pixel
with open(sys.argv[3], 'w') as f:
    f.write('SELECT count(*), count(*) FILTER (WHERE abs(want - py) < 0.5), max(abs(want - py)) FROM (VALUES\n')
    f.write(',\n'.join("('%s', %r, %r, %r)" % (l, p, py, x) for l, p, px, py, x in rows))
    f.write(""") v(lim, p, py, x), LATERAL (SELECT fit, limits FROM caredata.funnel('SELECT unit, observed, expected FROM units', policy => 'opensafely') LIMIT 1) f,
    LATERAL (SELECT %r - (caredata.funnel_limit(f.fit, x, p, f.limits) - %r) / (%r - %r) * (%r - %r) AS want) w
    WHERE py BETWEEN %r AND %r;\n""" % (a['px-bottom'], a['y-min'], a['y-max'], a['y-min'], a['px-bottom'], a['px-top'], a['px-top'], a['px-bottom']))
# the units: each point where its (size, ratio) is, the outliers labelled
units = {}
for line in open(sys.argv[2]):
    target, tau2, unit, den, ratio, outlier = line.split()
    units[unit] = (float(den), float(ratio), outlier == 't')
circles = g.findall(".//s:circle", ns)
say(len(circles) == len(units), 'one point per unit (%d)' % len(circles))
worst = max(max(abs(to_x(float(c.get('cx'))) - units[c.get('data-unit')][0]) / (a['x-max'] - a['x-min']),
                abs(to_y(float(c.get('cy'))) - units[c.get('data-unit')][1]) / (a['y-max'] - a['y-min'])) for c in circles)
say(worst < 1e-4, "each point sits at its unit's size and ratio (worst %.2g of the axis)" % worst)
labels = sorted(t.text for t in g.findall(".//s:text[@class='label']", ns))
say(labels == sorted(u for u, v in units.items() if v[2]) and labels == ['U04', 'U12'], 'the outliers, and only they, are labelled: %s' % ','.join(labels))
say(svg.find('s:title', ns) is not None and g is not None and svg.find(".//s:g[@id='legend']", ns) is not None, "a title, a plot area with its axes' ranges, and a legend")
texts = ' '.join(t.text or '' for t in svg.iter('{http://www.w3.org/2000/svg}text'))
say('Expected events' in texts and 'Standardised ratio' in texts, 'both axes are labelled')
# issue 24: points are the published counts, flags the true counts', and the plot says so, on the canvas
note = svg.find(".//s:text[@class='flag-note']", ns)
say(note is not None and 'flagged on the true counts' in note.text and float(note.get('y')) < float(svg.get('height')),
    'a footnote says points are the published counts and outliers are flagged on the true ones')
open(sys.argv[3] + '.labels', 'w').write(','.join(labels) + '\n')
PY
report "$out/svg.tap"
# the labels are the units whose TRUE ratio lies beyond the 99.8% limits at
# their true size (issue 24), whatever the published counts would say
true_out=$(psql -qXAt -d $db -c "SELECT string_agg(u.unit, ',' ORDER BY u.unit) FROM units u,
  LATERAL (SELECT fit, limits FROM caredata.funnel('$q', policy => 'opensafely') LIMIT 1) f
  WHERE u.observed / u.expected > caredata.funnel_limit(f.fit, u.expected, 0.999, f.limits)
     OR u.observed / u.expected < caredata.funnel_limit(f.fit, u.expected, 0.001, f.limits)")
[ -n "$true_out" ] && [ "$true_out" = "$(cat "$out/curves.sql.labels" 2>/dev/null)" ]
ok $? "the labelled units are those beyond the 99.8% limits on their true counts ($true_out)"
read -r total close worst < <(psql -qXAt -F ' ' -d $db -f "$out/curves.sql")
[ "${total:-0}" -gt 200 ] && [ "$total" = "$close" ]
ok $? "every visible point of the limit curves is within half a pixel of funnel_limit() ($close of $total; worst ${worst} px)"

# 3. the legend fits the canvas (issue 26: its method line was cut at the
# right edge): every legend text, measured in the font the SVG names
# (DejaVu Sans 12 px, by PIL), ends inside the SVG's width; on this plot
# and on one without over-dispersion, whose note is the longest
psql -qXAt -d $db -c "SELECT caredata.funnel_svg('SELECT unit, expected, expected FROM units', 'as expected everywhere')" > "$out/funnel_flat.svg"
/usr/bin/python3 - "$out/funnel.svg" "$out/funnel_flat.svg" > "$out/legend.tap" 2>&1 <<'PY'
import re, sys, xml.etree.ElementTree as ET
from PIL import ImageFont
ns = '{http://www.w3.org/2000/svg}'
font = ImageFont.truetype('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 12)
def say(cond, what):
    print(('ok - ' if cond else 'not ok - ') + what)
for path in sys.argv[1:]:
    svg = ET.parse(path).getroot()
    width = float(svg.get('width'))
    legend = svg.find(".//%sg[@id='legend']" % ns)
    tx = float(re.match(r'translate\(([-0-9.]+)', legend.get('transform')).group(1))
    texts = [(t.text or '', tx + float(t.get('x')) + font.getlength(t.text or '')) for t in legend.iter(ns + 'text')]
    right = max(r for _, r in texts)
    widest = max(texts, key=lambda x: x[1])[0]
    say(len(texts) >= 7 and right <= width, "%s: every legend line ends inside the %g px canvas (rightmost at %.0f px: '%s')"
        % (path.rsplit('/', 1)[-1], width, right, widest))
    notes = ' '.join(t.text for t in legend.iter(ns + 'text') if t.get('class') == 'legend-note')
    say(('no over-dispersion' in notes) == ('flat' in path), '%s: the method note is there, whole: %s' % (path.rsplit('/', 1)[-1], notes))
PY
report "$out/legend.tap"

drop_db
done_testing
