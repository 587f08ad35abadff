/** Passkey sweeps as depth x length heatmaps (SVG), one per policy and budget. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EvalRecord } from '../run/records.js';

/** Depth 0 is Quest's random needle position (src/tasks/passkey.ts), not the very start. */
const depthLabel = (d: number) => (d === 0 ? 'random' : `${d}%`);

const CELL = 44;
const LEFT = 70;
const TOP = 40;
export const TITLE_SIZE = 14;
// An upper bound on a sans-serif glyph's advance, in ems (Helvetica's widest lowercase and
// digits are 0.83 and 0.56 em): the SVG is made wide enough for the whole title.
export const GLYPH_EM = 0.65;

export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
/** Red at 0, yellow at 0.5, green at 1. */
function color(v: number): string {
  const r = v < 0.5 ? 220 : Math.round(220 - (v - 0.5) * 2 * 180);
  const g = v < 0.5 ? Math.round(60 + v * 2 * 160) : 200;
  return `rgb(${r},${g},60)`;
}

export function heatmapSvg(title: string, records: EvalRecord[]): string {
  const lengths = [...new Set(records.map((r) => r.length ?? 0))].sort((a, b) => a - b);
  const depths = [...new Set(records.map((r) => r.depth ?? 0))].sort((a, b) => a - b);
  const w = Math.ceil(Math.max(LEFT + lengths.length * CELL + 20, LEFT + title.length * TITLE_SIZE * GLYPH_EM + 20));
  const h = TOP + depths.length * CELL + 50;
  const cells = depths.flatMap((d, y) =>
    lengths.map((L, x) => {
      const rs = records.filter((r) => r.length === L && r.depth === d && r.score !== null);
      if (!rs.length) return '';
      const v = rs.reduce((a, r) => a + r.score!, 0) / rs.length;
      const cx = LEFT + x * CELL;
      const cy = TOP + y * CELL;
      return `<rect x="${cx}" y="${cy}" width="${CELL - 2}" height="${CELL - 2}" fill="${color(v)}"><title>length ${L}, depth ${depthLabel(d)}: ${(100 * v).toFixed(0)}% of ${rs.length}</title></rect><text x="${cx + CELL / 2 - 1}" y="${cy + CELL / 2 + 4}" text-anchor="middle">${Math.round(100 * v)}</text>`;
    }),
  );
  const xLabels = lengths.map((L, x) => `<text x="${LEFT + x * CELL + CELL / 2}" y="${TOP + depths.length * CELL + 16}" text-anchor="middle">${L >= 1024 ? `${L / 1024}K` : L}</text>`);
  const yLabels = depths.map((d, y) => `<text x="${LEFT - 8}" y="${TOP + y * CELL + CELL / 2 + 4}" text-anchor="end">${depthLabel(d)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<text x="${LEFT}" y="22" font-size="${TITLE_SIZE}">${esc(title)}</text>`,
    ...cells,
    ...xLabels,
    ...yLabels,
    `<text x="${LEFT + (lengths.length * CELL) / 2}" y="${h - 8}" text-anchor="middle">context length (tokens)</text>`,
    `<text x="14" y="${TOP + (depths.length * CELL) / 2}" transform="rotate(-90 14 ${TOP + (depths.length * CELL) / 2})" text-anchor="middle">needle depth</text>`,
    '</svg>',
  ].join('\n');
}

/**
 * Writes passkey-<policy>-<budget>.svg for each policy point of a passkey run; returns the
 * files. A sweep of one length and one depth is a single cell, no map: none is written, and
 * a line on stderr says so.
 */
export function writePasskeyHeatmaps(dir: string, records: EvalRecord[]): string[] {
  const passkey = records.filter((r) => r.task === 'passkey');
  const cells = new Set(passkey.map((r) => `${r.length}|${r.depth}`));
  if (cells.size === 1) {
    process.stderr.write('quest: no passkey heatmap: the sweep has one length and one depth (a single cell)\n');
    return [];
  }
  const points = new Map<string, EvalRecord[]>();
  for (const r of passkey) {
    const k = `${r.policy}-${r.budget ?? 'all'}`;
    points.set(k, [...(points.get(k) ?? []), r]);
  }
  return [...points.entries()].map(([k, rs]) => {
    const file = path.join(dir, `passkey-${k}.svg`);
    writeFileSync(file, heatmapSvg(`passkey accuracy (%), ${rs[0].policy}${rs[0].budget ? ` at budget ${rs[0].budget}` : ''}`, rs));
    return file;
  });
}
