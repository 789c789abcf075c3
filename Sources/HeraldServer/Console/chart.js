// A small line chart in inline SVG, drawn with DOM calls (no markup strings).

const svgNamespace = 'http://www.w3.org/2000/svg';

function svg(tag, attributes) {
  const element = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/**
 * A chart of `series` ([{label, className, points: [[time, value]]}]) over the last `windowMs`.
 * Lines differ by dash pattern as well as colour; the title names the series and their last values.
 */
export function lineChart(series, windowMs, { width = 160, height = 36, now = Date.now() } = {}) {
  const maximum = Math.max(1, ...series.flatMap((line) => line.points.map(([, value]) => value)));
  const root = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    preserveAspectRatio: 'none',
  });
  const title = svg('title', {});
  title.textContent = series
    .map((line) => `${line.label}: ${line.points.length ? line.points[line.points.length - 1][1] : 'no data'}`)
    .join(', ') + ` (last ${windowMs >= 60000 ? `${Math.round(windowMs / 60000)} min` : `${Math.round(windowMs / 1000)} s`}, max ${maximum})`;
  root.append(title);
  root.append(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }));
  for (const line of series) {
    const points = line.points
      .filter(([at]) => now - at <= windowMs)
      .map(([at, value]) => [width - ((now - at) / windowMs) * width, height - 2 - (value / maximum) * (height - 4)]);
    // One sample is a short dash rather than nothing.
    if (points.length === 1) points.unshift([points[0][0] - 3, points[0][1]]);
    if (!points.length) continue;
    const text = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points: text, class: `series ${line.className}` }));
  }
  return root;
}
