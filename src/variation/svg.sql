-- src/variation/svg.sql
-- caredata.funnel_svg(): a funnel plot as SVG text, readable without a
-- key: the units as points (outliers labelled), the target line, the 95%
-- and 99.8% limit curves, axes with their labels, a title, a legend, and a
-- footnote naming the method and the units not shown for small numbers,
-- and one saying that points are drawn at the published counts and
-- flagged on the true ones.
-- The plot area carries its data ranges (data-x-min ...), and each curve
-- its limit and probability, so that a reader (or a test) can map the
-- drawing back to the numbers.

CREATE FUNCTION caredata._svg_text(t text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN replace(replace(replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
COMMENT ON FUNCTION caredata._svg_text(text) IS 'internal: text escaped for SVG (XML)';

-- round ticks between lo and hi, about five of them
CREATE FUNCTION caredata._svg_ticks(lo double precision, hi double precision) RETURNS double precision[]
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
  WITH s AS (
    SELECT CASE WHEN raw / mag < 1.5 THEN 1 WHEN raw / mag < 3.5 THEN 2 WHEN raw / mag < 7.5 THEN 5 ELSE 10 END * mag AS step
      FROM (SELECT raw, 10 ^ floor(log(raw)) AS mag
              FROM (SELECT greatest((hi - lo) / 5, 1e-12) AS raw) r) m
  )
  SELECT array_agg(round((k * step)::numeric, 10)::float8 ORDER BY k)
    FROM s, generate_series(ceil(lo / step)::bigint, floor(hi / step)::bigint) k;
END;
COMMENT ON FUNCTION caredata._svg_ticks(double precision, double precision) IS 'internal: about five round axis ticks between lo and hi';

-- text broken into lines of at most max_chars characters, at spaces (a
-- longer word is a line of its own): SVG text does not wrap, and the
-- legend has 236 px of the canvas (about 30 characters of 12 px DejaVu Sans)
CREATE FUNCTION caredata._svg_lines(t text, max_chars integer) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  word text;
  line text := '';
  lines text[] := '{}';
BEGIN
  FOREACH word IN ARRAY regexp_split_to_array(btrim(t), '\s+') LOOP
    IF line <> '' AND length(line) + 1 + length(word) > max_chars THEN
      lines := lines || line;
      line := word;
    ELSE
      line := CASE WHEN line = '' THEN word ELSE line || ' ' || word END;
    END IF;
  END LOOP;
  RETURN CASE WHEN line = '' THEN lines ELSE lines || line END;
END
$$;
COMMENT ON FUNCTION caredata._svg_lines(text, integer) IS 'internal: text broken at spaces into lines of at most max_chars characters (a longer word alone on its line)';

CREATE FUNCTION caredata._funnel_svg(unit_keys text[], unit_nums text[], unit_dens text[], title text, data_type text,
                                     method text, sr_method text, trim_by double precision, flag_limit numeric,
                                     policy text, x_label text, y_label text)
  RETURNS text LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- the canvas and the plot area, in pixels
  w constant int := 900;
  h constant int := 620;
  x0 constant float8 := 80;
  x1 constant float8 := 640;
  y0 constant float8 := 70;
  y1 constant float8 := 520;
  f caredata.funnel_fit;
  rs caredata.funnel_row[];
  lm text;
  xmax float8;
  xmin float8 := 0;
  ymin float8;
  ymax float8;
  xlo float8;
  svg text;
  curves text := '';
  pts text := '';
  labels text := '';
  axes text := '';
  hidden text;
  t float8;
  c record;
  line_pts text;
  colour text;
  style text;
BEGIN
  rs := ARRAY(SELECT r FROM caredata._funnel(unit_keys, unit_nums, unit_dens, data_type, method, sr_method, trim_by, flag_limit, policy) r);
  SELECT (r.fit).* INTO f FROM unnest(rs) r LIMIT 1;
  IF f.data_type IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'no units to plot',
      HINT = 'The query gives one row per unit: unit, numerator, denominator.';
  END IF;
  SELECT r.limits INTO lm FROM unnest(rs) r LIMIT 1;

  -- ranges: x from 0 to past the largest unit, y around the target and the points (FunnelPlotR's)
  SELECT max(denominator) * 1.05, least(0.7 * f.target, 0.9 * min(ratio)), greatest(1.3 * f.target, 1.1 * max(ratio))
    INTO xmax, ymin, ymax FROM unnest(rs);
  IF ymin IS NULL THEN ymin := 0.7 * f.target; ymax := 1.3 * f.target; END IF;
  IF f.data_type = 'PR' THEN ymin := greatest(0, ymin); ymax := least(1, ymax); END IF;
  IF f.data_type = 'PR' AND ymax <= ymin THEN ymax := ymin + 0.1; END IF;
  xlo := greatest(xmax / 2000, CASE WHEN f.data_type = 'PR' THEN 1 ELSE 0.1 END);

  -- the limit curves, on 240 sizes spaced evenly in sqrt(size) (the funnel narrows as 1/sqrt)
  FOR c IN SELECT * FROM (VALUES ('lower_998', 0.001, 'solid'), ('lower_95', 0.025, 'dashed'),
                                 ('upper_95', 0.975, 'dashed'), ('upper_998', 0.999, 'solid')) v(name, p, kind) LOOP
    SELECT string_agg(format('%s,%s', round((x0 + (sz - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                                      round((y1 - (caredata.funnel_limit(f, sz, c.p, lm) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2)),
                      ' ' ORDER BY sz)
      INTO line_pts
      FROM (SELECT DISTINCT CASE WHEN f.data_type = 'PR' THEN round(s)::float8 ELSE s END AS sz
              FROM (SELECT (sqrt(xlo) + k / 239.0 * (sqrt(xmax) - sqrt(xlo))) ^ 2 AS s FROM generate_series(0, 239) k) g) q;
    colour := CASE WHEN c.kind = 'solid' THEN '#5B3A8E' ELSE '#1F77B4' END;
    style := CASE WHEN c.kind = 'dashed' THEN ' stroke-dasharray="6 4"' ELSE '' END;
    curves := curves || format('<polyline class="limit" data-limit="%s" data-probability="%s" fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>',
                               c.name, c.p, colour, style, line_pts) || E'\n';
  END LOOP;

  -- axes: ticks, grid, labels
  FOREACH t IN ARRAY caredata._svg_ticks(xmin, xmax) LOOP
    axes := axes || format('<line x1="%1$s" y1="%2$s" x2="%1$s" y2="%3$s" stroke="#E5E5E5"/><text x="%1$s" y="%4$s" text-anchor="middle">%5$s</text>',
                           round((x0 + (t - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2), y0, y1, y1 + 18, t) || E'\n';
  END LOOP;
  FOREACH t IN ARRAY caredata._svg_ticks(ymin, ymax) LOOP
    axes := axes || format('<line x1="%2$s" y1="%1$s" x2="%3$s" y2="%1$s" stroke="#E5E5E5"/><text x="%4$s" y="%5$s" text-anchor="end">%6$s</text>',
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x0, x1, x0 - 8,
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric + 4, 2), t) || E'\n';
  END LOOP;

  -- the units: points, outliers labelled
  FOR c IN SELECT * FROM unnest(rs) r WHERE NOT r.suppressed ORDER BY r.outlier, r.unit LOOP
    pts := pts || format('<circle class="unit%s" data-unit="%s" cx="%s" cy="%s" r="4.5" fill="%s" stroke="#333" stroke-width="0.6"><title>%s: %s %s (%s / %s), %s</title></circle>',
                         CASE WHEN c.outlier THEN ' outlier' ELSE '' END, caredata._svg_text(c.unit),
                         round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                         round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2),
                         CASE WHEN c.outlier THEN '#FF7F0E' ELSE '#9A9A9A' END,
                         caredata._svg_text(c.unit), CASE WHEN f.data_type = 'PR' THEN 'proportion' ELSE 'ratio' END,
                         round(c.ratio::numeric, 3), c.numerator, round(c.denominator::numeric, 1), c.band) || E'\n';
    IF c.outlier THEN
      labels := labels || format('<text class="label" x="%s" y="%s" font-weight="bold">%s</text>',
                                 round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric + 7, 2),
                                 round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric - 7, 2),
                                 caredata._svg_text(c.unit)) || E'\n';
    END IF;
  END LOOP;
  SELECT string_agg(caredata._svg_text(r.unit), ', ' ORDER BY r.unit) INTO hidden FROM unnest(rs) r WHERE r.suppressed;

  svg := format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %1$s %2$s" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">', w, h) || E'\n'
    || format('<title>%s</title>', caredata._svg_text(title)) || E'\n'
    || format('<rect width="%s" height="%s" fill="#FFFFFF"/>', w, h) || E'\n'
    || format('<text x="%s" y="36" font-size="18" font-weight="bold">%s</text>', x0, caredata._svg_text(title)) || E'\n'
    || format('<defs><clipPath id="plot-area"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || format('<g id="plot" data-x-min="%s" data-x-max="%s" data-y-min="%s" data-y-max="%s" data-px-left="%s" data-px-right="%s" data-px-top="%s" data-px-bottom="%s" data-method="%s" data-target="%s" data-phi="%s" data-tau2="%s">',
              xmin, xmax, ymin, ymax, x0, x1, y0, y1, lm, f.target, f.phi, f.tau2) || E'\n'
    || axes
    || format('<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#333"/>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || '<g clip-path="url(#plot-area)">' || E'\n'
    || format('<line class="target" x1="%s" y1="%s" x2="%s" y2="%2$s" stroke="#333" stroke-width="1.2"/>', x0,
              round((y1 - (f.target - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x1) || E'\n'
    || curves || '</g>' || E'\n' || pts || labels || '</g>' || E'\n'
    || format('<text x="%s" y="%s" text-anchor="middle" font-size="13">%s</text>', (x0 + x1) / 2, y1 + 42,
              caredata._svg_text(coalesce(x_label, CASE WHEN f.data_type = 'SR' THEN 'Expected events' ELSE 'Cases (denominator)' END))) || E'\n'
    || format('<text x="22" y="%s" text-anchor="middle" font-size="13" transform="rotate(-90 22 %1$s)">%s</text>', (y0 + y1) / 2,
              caredata._svg_text(coalesce(y_label, CASE f.data_type WHEN 'SR' THEN 'Standardised ratio (observed / expected)'
                                                                 WHEN 'PR' THEN 'Proportion' ELSE 'Ratio' END))) || E'\n'
    -- the legend
    || format('<g id="legend" transform="translate(%s %s)">', x1 + 24, y0 + 10) || E'\n'
    || '<line x1="0" y1="0" x2="28" y2="0" stroke="#333" stroke-width="1.2"/><text x="36" y="4">target</text>' || E'\n'
    || '<line x1="0" y1="22" x2="28" y2="22" stroke="#1F77B4" stroke-width="1.6" stroke-dasharray="6 4"/><text x="36" y="26">95% limits</text>' || E'\n'
    || '<line x1="0" y1="44" x2="28" y2="44" stroke="#5B3A8E" stroke-width="1.6"/><text x="36" y="48">99.8% limits</text>' || E'\n'
    || '<circle cx="14" cy="66" r="4.5" fill="#9A9A9A" stroke="#333" stroke-width="0.6"/><text x="36" y="70">unit</text>' || E'\n'
    || format('<circle cx="14" cy="88" r="4.5" fill="#FF7F0E" stroke="#333" stroke-width="0.6"/><text x="36" y="92">outlier (beyond %s%%)</text>', flag_limit) || E'\n'
    -- (the notes, wrapped to the legend's width: the canvas ends 236 px to its right)
    || (SELECT string_agg(format('<text class="legend-note" x="0" y="%s">%s</text>', 104 + 18 * n, caredata._svg_text(l)), E'\n' ORDER BY n)
          FROM unnest(caredata._svg_lines(format('%s units; target %s', (SELECT count(*) FROM unnest(rs)), round(f.target::numeric, 4)), 28)
                      || caredata._svg_lines(CASE lm WHEN 'tau2' THEN format('over-dispersed: tau2 = %s', round(f.tau2::numeric, 5))
                                                     WHEN 'phi' THEN format('over-dispersed: phi = %s', round(f.phi::numeric, 3))
                                                     WHEN 'exact' THEN 'exact limits'
                                                     WHEN 'unadjusted' THEN format('unadjusted limits (phi = %s: no over-dispersion)', round(f.phi::numeric, 3))
                                                     ELSE 'normal approximation' END, 28)) WITH ORDINALITY x(l, n)) || E'\n'
    || '</g>' || E'\n'
    || format('<text x="%s" y="%s" font-size="11" fill="#444">%s</text>', x0, y1 + 70,
              caredata._svg_text(CASE WHEN hidden IS NULL THEN 'Every unit is shown.'
                                      ELSE 'Not shown (small numbers, disclosure control): ' || hidden END)) || E'\n'
    -- the points are the published counts, the flags the true counts'
    || format('<text class="flag-note" x="%s" y="%s" font-size="11" fill="#444">%s</text>', x0, y1 + 86,
              'Points show the published counts; outliers are flagged on the true counts, so a point near a limit may sit on its other side.') || E'\n'
    || '</svg>' || E'\n';
  RETURN svg;
END
$$;
COMMENT ON FUNCTION caredata._funnel_svg(text[], text[], text[], text, text, text, text, double precision, numeric, text, text, text) IS
  'internal: caredata.funnel_svg() on the units of its query (caredata._query_columns)';
CREATE FUNCTION caredata.funnel_svg(units text, title text DEFAULT 'Funnel plot', data_type text DEFAULT 'SR',
                                    method text DEFAULT 'tau2', sr_method text DEFAULT 'SHMI',
                                    trim_by double precision DEFAULT 0.1, flag_limit numeric DEFAULT 99.8,
                                    policy text DEFAULT NULL, x_label text DEFAULT NULL, y_label text DEFAULT NULL)
  RETURNS text LANGUAGE sql STABLE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT caredata._funnel_svg(q.c1, q.c2, q.c3, funnel_svg.title, funnel_svg.data_type, funnel_svg.method,
                              funnel_svg.sr_method, funnel_svg.trim_by, funnel_svg.flag_limit, funnel_svg.policy,
                              funnel_svg.x_label, funnel_svg.y_label)
    FROM caredata._query_columns(units, 3) q;
END;
COMMENT ON FUNCTION caredata.funnel_svg(text, text, text, text, text, double precision, numeric, text, text, text) IS
  'a funnel plot of a query''s units (unit, numerator, denominator) as SVG text: points, outliers labelled, target, 95% and 99.8% limits, axes, title, legend; units suppressed for small numbers are named, not drawn';
