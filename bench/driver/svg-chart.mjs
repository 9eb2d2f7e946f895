// @ts-check
/**
 * A horizontal bar chart on a log scale, as a standalone SVG: one group per workload and mode,
 * one bar per driver. With a baseline in the run, bars are the median ratio to it and grow from
 * 1× (left: faster, right: slower), with a whisker for the min–max of the per-round ratios;
 * without one, bars are median wall times in seconds.
 */

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const WIDTH = 980;
const LABEL_W = 330;
const PLOT_L = LABEL_W + 10;
const PLOT_R = WIDTH - 60;
const BAR_H = 11;
const GROUP_PAD = 10;
const TOP = 70;

function esc(/** @type {string} */ s) {
  return s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c] ?? c);
}

function fmt(/** @type {number} */ v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return String(Number(v.toPrecision(2)));
}

/** @param {any} report the object harness.mjs writes as results.json */
export function renderChart(report) {
  /** @type {string[]} */
  const drivers = report.config.drivers.map((/** @type {{name: string}} */ d) => d.name);
  const baseline = report.config.baseline;
  const byRatio = drivers.includes(baseline) && drivers.length > 1;
  const shown = byRatio ? drivers.filter((d) => d !== baseline) : drivers;
  /** @type {Record<string, string>} */
  const titles = Object.fromEntries(
    report.config.workloads.map((/** @type {{id: string, title: string}} */ w) => [w.id, w.title]),
  );
  /** @type {import("./report.mjs").Row[]} */
  const rows = report.summary;
  const pick = (/** @type {import("./report.mjs").Cell | undefined} */ c) =>
    c === undefined ? null : byRatio ? c.ratio : c.seconds;
  const values = rows
    .flatMap((r) =>
      shown.flatMap((d) => {
        const s = pick(r.cells[d]);
        return s === null ? [] : [s.min, s.max, s.median];
      }),
    )
    .filter((v) => v > 0);
  let lo = values.length > 0 ? Math.floor(Math.log10(Math.min(...values))) : -1;
  let hi = values.length > 0 ? Math.ceil(Math.log10(Math.max(...values))) : 1;
  if (byRatio) {
    lo = Math.min(lo, -1);
    hi = Math.max(hi, 1);
  }
  if (hi === lo) hi = lo + 1;
  const x = (/** @type {number} */ v) => PLOT_L + ((Math.log10(v) - lo) / (hi - lo)) * (PLOT_R - PLOT_L);
  const groupH = shown.length * (BAR_H + 2) + GROUP_PAD;
  const height = TOP + rows.length * groupH + 50;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  const title = byRatio
    ? `Time relative to ${baseline} (median of per-round ratios, log scale; whiskers: min–max)`
    : "Wall time, seconds (median, log scale)";
  out.push(`<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  shown.forEach((d, i) => {
    const lx = PLOT_L + i * 150;
    out.push(`<rect x="${lx}" y="34" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="44">${esc(d)}</text>`);
  });
  const plotBottom = TOP + rows.length * groupH;
  for (let k = lo; k <= hi; k++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (Math.log10(v) > hi + 1e-9) continue;
      const gx = x(v).toFixed(1);
      const major = m === 1;
      out.push(`<line x1="${gx}" y1="${TOP - 6}" x2="${gx}" y2="${plotBottom}" stroke="${major ? "#bbb" : "#eee"}"/>`);
      if (major || hi - lo <= 2) {
        out.push(
          `<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" fill="#444">${String(Number(v.toPrecision(1)))}${byRatio ? "×" : " s"}</text>`,
        );
      }
    }
  }
  if (byRatio)
    out.push(
      `<line x1="${x(1).toFixed(1)}" y1="${TOP - 6}" x2="${x(1).toFixed(1)}" y2="${plotBottom}" stroke="#000" stroke-width="1.5"/>`,
    );
  rows.forEach((r, gi) => {
    const gy = TOP + gi * groupH;
    if (gi % 2 === 0) out.push(`<rect x="0" y="${gy - 3}" width="${WIDTH}" height="${groupH}" fill="#f7f7f7"/>`);
    const label = `${titles[r.workload] ?? r.workload} (${r.mode})`;
    out.push(`<text x="${LABEL_W}" y="${gy + (groupH - GROUP_PAD) / 2 + 4}" text-anchor="end">${esc(label)}</text>`);
    shown.forEach((d, i) => {
      const s = pick(r.cells[d]);
      const y = gy + i * (BAR_H + 2);
      if (s === null || s.median <= 0) {
        out.push(`<text x="${PLOT_L + 4}" y="${y + BAR_H - 2}" fill="#999">${esc(d)}: no result</text>`);
        return;
      }
      const from = byRatio ? x(1) : PLOT_L;
      const to = x(s.median);
      const left = Math.min(from, to);
      const color = COLORS[i % COLORS.length];
      out.push(
        `<rect x="${left.toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(to - from)).toFixed(1)}" height="${BAR_H}" fill="${color}"><title>${esc(`${d}: ${fmt(s.median)}${byRatio ? "×" : " s"} (${fmt(s.min)}–${fmt(s.max)})`)}</title></rect>`,
      );
      const cy = y + BAR_H / 2;
      if (s.min !== s.max)
        out.push(`<line x1="${x(s.min).toFixed(1)}" y1="${cy}" x2="${x(s.max).toFixed(1)}" y2="${cy}" stroke="#333"/>`);
      // the label goes beyond the bar and its whisker, on the side the bar grows to
      const right = !byRatio || s.median >= 1;
      const tx = right ? Math.max(to, x(s.max)) + 4 : Math.min(to, x(s.min)) - 4;
      out.push(
        `<text x="${tx.toFixed(1)}" y="${y + BAR_H - 1}" font-size="10" text-anchor="${right ? "start" : "end"}">${fmt(s.median)}${byRatio ? "×" : ""}</text>`,
      );
    });
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
