/** Line plots (SVG): panels of series over a shared legend, in the heatmaps' style. */
import { esc, GLYPH_EM, TITLE_SIZE } from './heatmap.js';

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
  /** One value drawn across the whole panel (dense's score, which has no budget). */
  across?: boolean;
}

export interface Axis {
  title: string;
  log: boolean;
  /** Labelled values; the first and last bound the axis. */
  ticks: number[];
  label: (v: number) => string;
}

export interface Panel {
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
}

const W = 300;
const H = 180;
const LEFT = 60;
const TOP = 60;
const GAP_X = 90;
const GAP_Y = 80;
const COLS = 3;
const LEGEND_ROW = 18;
// Distinct on white and for the common colour-vision deficiencies (Okabe and Ito's palette).
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

const n1 = (v: number) => v.toFixed(1);

/** Where v falls on the axis, from 0 (first tick) to 1 (last tick). */
function at(a: Axis, v: number): number {
  const f = a.log ? Math.log : (x: number) => x;
  const lo = f(a.ticks[0]);
  const hi = f(a.ticks[a.ticks.length - 1]);
  return hi === lo ? 0.5 : (f(v) - lo) / (hi - lo);
}

/** 1, 2 and 5 times powers of ten, from the last at or below `min` to the first at or above `max`. */
export function logTicks(min: number, max: number): number[] {
  const all: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) for (const m of [1, 2, 5]) all.push(Number((m * 10 ** e).toPrecision(6)));
  const first = all.filter((v) => v <= min).pop()!;
  const last = all.find((v) => v >= max)!;
  return all.filter((v) => v >= first && v <= last);
}

function panelSvg(p: Panel, x0: number, y0: number, color: (name: string) => string): string[] {
  const px = (v: number) => x0 + at(p.x, v) * W;
  const py = (v: number) => y0 + H - at(p.y, v) * H;
  const out = [`<text x="${x0}" y="${y0 - 10}" font-weight="bold">${esc(p.title)}</text>`];
  out.push(`<rect x="${x0}" y="${y0}" width="${W}" height="${H}" fill="none" stroke="#999"/>`);
  for (const t of p.x.ticks)
    out.push(`<line x1="${n1(px(t))}" y1="${y0}" x2="${n1(px(t))}" y2="${y0 + H}" stroke="#eee"/><text x="${n1(px(t))}" y="${y0 + H + 16}" text-anchor="middle">${esc(p.x.label(t))}</text>`);
  for (const t of p.y.ticks)
    out.push(`<line x1="${x0}" y1="${n1(py(t))}" x2="${x0 + W}" y2="${n1(py(t))}" stroke="#eee"/><text x="${x0 - 6}" y="${n1(py(t) + 4)}" text-anchor="end">${esc(p.y.label(t))}</text>`);
  out.push(`<text x="${x0 + W / 2}" y="${y0 + H + 34}" text-anchor="middle">${esc(p.x.title)}</text>`);
  out.push(`<text x="${x0 - 44}" y="${y0 + H / 2}" transform="rotate(-90 ${x0 - 44} ${y0 + H / 2})" text-anchor="middle">${esc(p.y.title)}</text>`);
  for (const s of p.series) {
    const c = color(s.name);
    const pts = s.across ? [p.x.ticks[0], p.x.ticks[p.x.ticks.length - 1]].map((x) => ({ x, y: s.points[0].y })) : s.points;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${pts.map((q) => `${n1(px(q.x))},${n1(py(q.y))}`).join(' ')}" fill="none" stroke="${c}" stroke-width="2"${dash}><title>${esc(s.name)}</title></polyline>`);
    if (!s.across)
      for (const q of s.points)
        out.push(`<circle cx="${n1(px(q.x))}" cy="${n1(py(q.y))}" r="3" fill="${c}"><title>${esc(`${s.name}: ${p.x.label(q.x)}, ${p.y.label(q.y)}`)}</title></circle>`);
  }
  return out;
}

/** Panels in rows of three under one title, a legend of every series name below them. */
export function linePlotsSvg(title: string, panels: Panel[]): string {
  const all = panels.flatMap((p) => p.series);
  const names = [...new Set(all.map((s) => s.name))];
  const dashed = (name: string) => (all.find((s) => s.name === name)!.dashed ? ' stroke-dasharray="6 4"' : '');
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length];
  const cols = Math.min(COLS, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const body = panels.flatMap((p, i) => panelSvg(p, LEFT + (i % cols) * (W + GAP_X), TOP + Math.floor(i / cols) * (H + GAP_Y), color));
  const legendTop = TOP + rows * (H + GAP_Y) - 20;
  const legend = names.map((name, i) => {
    const y = legendTop + i * LEGEND_ROW;
    return `<line x1="${LEFT}" y1="${y - 4}" x2="${LEFT + 24}" y2="${y - 4}" stroke="${color(name)}" stroke-width="2"${dashed(name)}/><text x="${LEFT + 30}" y="${y}">${esc(name)}</text>`;
  });
  const w = Math.ceil(Math.max(LEFT + cols * (W + GAP_X), LEFT + title.length * TITLE_SIZE * GLYPH_EM + 20));
  const h = legendTop + names.length * LEGEND_ROW + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${LEFT}" y="24" font-size="${TITLE_SIZE}">${esc(title)}</text>`,
    ...body,
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}
