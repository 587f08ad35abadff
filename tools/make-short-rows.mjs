#!/usr/bin/env node
// Short training rows of RULER's vt and cwe for tools/train-model.py (docs/training.md, "Short
// rows"): the project's own generators' wording (src/tasks/ruler, RULER's templates), without
// the solved example and with few noise lines or list entries, so that a row of 224-384 tokens
// holds one whole task. On the CPU (2026-12-08) rows like these taught quest-tiny vt's chained
// lookup, which rows of 1K-16K had not in three rounds. Needs `npm run build` (reads dist/).
//   node tools/make-short-rows.mjs vt  --hops H --noise LO:HI --length L -n N --seed S --out DIR
//   node tools/make-short-rows.mjs cwe --repeats LO:HI --others LO:HI --length L -n N --seed S --out DIR
// A range's top that never fits the bucket is refused, and the ranges the rows hold are printed.
// vt: one chain of H hops among LO-HI noise lines; cwe: 10 words LO-HI times each and LO-HI
// other words once, shuffled afresh for every row (RULER's generator shuffles a file's rows
// alike). Writes DIR/TASK-L.jsonl (train-model.py's bucket L); a row's prompt and its answer,
// as train-model.py writes it, fit L tokens plus train-model.py's ANSWER_SLACK, counted in
// models/quest-tiny's tokens (the tokenizer the rounds train with).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const fail = (msg) => {
  console.error(`tools/make-short-rows.mjs: ${msg}`);
  process.exit(2);
};
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
if (!existsSync(path.join(root, 'dist', 'tasks', 'ruler', 'cwe.js'))) fail('dist/ is missing: run `npm run build` first');
const { loadTokenizer } = await dist('model/tokenizer.js');
const { rng, randint, sample, shuffle } = await dist('tasks/rng.js');
const { rulerPrompt } = await dist('tasks/ruler/common.js');
const { VT_TEMPLATE, statements, vtContext } = await dist('tasks/ruler/vt.js');
const { CWE_TEMPLATE, cweVocabulary, numbered } = await dist('tasks/ruler/cwe.js');
if (typeof cweVocabulary !== 'function') fail('dist/ predates this tool: run `npm run build` first');

// tools/train-model.py: ANSWER_SLACK, a row's BOS and EOS, and target_text's answers (in the
// order of their first whole-word appearance, first_at; cwe's numbered).
const ANSWER_SLACK = 32;
const firstAt = (context, word) => {
  const at = context.search(new RegExp(`(?<![\\w-])${word}(?![\\w-])`));
  return at < 0 ? context.length : at;
};
const target = (task, context, answers) => {
  const sorted = [...answers].sort((a, b) => firstAt(context, a) - firstAt(context, b));
  return ' ' + (task === 'cwe' ? numbered(sorted) : sorted.join(' ')) + '.';
};

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      hops: { type: 'string', default: '4' },
      noise: { type: 'string', default: '5:6' },
      repeats: { type: 'string', default: '3:3' },
      others: { type: 'string', default: '5:12' },
      length: { type: 'string' },
      n: { type: 'string', short: 'n' },
      seed: { type: 'string' },
      out: { type: 'string' },
    },
  });
} catch (err) {
  fail(err.message);
}
const { positionals, values } = parsed;
const task = positionals[0];
if (task !== 'vt' && task !== 'cwe') fail(`the task is vt or cwe, not ${task ?? 'none'}`);
const int = (flag) => {
  const v = Number(values[flag]);
  if (values[flag] === undefined || !Number.isInteger(v) || v < 0) fail(`--${flag} ${values[flag] ?? '(missing)'}: expected a whole number`);
  return v;
};
const range = (flag) => {
  const m = /^(\d+):(\d+)$/.exec(values[flag]);
  if (!m || +m[1] > +m[2]) fail(`--${flag} ${values[flag]}: expected LO:HI, LO at most HI`);
  return [+m[1], +m[2]];
};
const [length, count, seed] = [int('length'), int('n'), int('seed')];
if (count < 1) fail('-n 0: at least one row');
if (!values.out) fail('--out DIR is missing');
const tok = loadTokenizer(path.join(root, 'models', 'quest-tiny'));
const next = rng(seed);
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

const hops = int('hops'), [lo, hi] = range('noise'), [rlo, rhi] = range('repeats'), [olo, ohi] = range('others');
if (task === 'vt' && hops < 1) fail(`--hops ${hops}: at least one`);
if (task === 'vt' && lo < hops + 1) fail(`--noise ${values.noise}: at least as many noise lines as the chain's ${hops + 1} statements`);
if (task === 'cwe' && rlo < 2) fail(`--repeats ${values.repeats}: the ten words at least twice each, more often than the others`);

function vtRow() {
  const vars = Array.from({ length: hops + 1 }, () => Array.from({ length: 5 }, () => LETTERS[Math.floor(next() * 26)]).join(''));
  if (new Set(vars).size < vars.length) return null;
  const value = String(randint(next, 10000, 99998));
  const st = statements(vars, value);
  const noises = randint(next, lo, hi);
  const context = vtContext(st, noises, sample(next, [...Array(noises).keys()], st.length));
  return { prompt: rulerPrompt(VT_TEMPLATE, { context, query: value, num_v: hops + 1 }), answers: vars, drawn: { noise: noises } };
}

function cweRow() {
  const repeats = randint(next, rlo, rhi), others = randint(next, olo, ohi);
  const picked = sample(next, cweVocabulary(), 10 + others);
  const list = shuffle(next, [...Array.from({ length: repeats }, () => picked.slice(0, 10)).flat(), ...picked.slice(10)]);
  return { prompt: rulerPrompt(CWE_TEMPLATE, { context: numbered(list), num_cw: 10, query: '' }), answers: picked.slice(0, 10), drawn: { repeats, others } };
}

// A range's top that is drawn but never fits would narrow the rows unseen: refused below.
const tops = task === 'vt' ? { noise: hi } : { repeats: rhi, others: ohi };
const seen = Object.fromEntries(Object.keys(tops).map((k) => [k, { drawnTop: false, most: -1, least: Infinity }]));
const rows = [];
for (let tries = 0; rows.length < count; tries++) {
  if (tries > 20 * count + 100) fail(`--length ${length}: too short for these rows (${rows.length} of ${count} fitted)`);
  const r = task === 'vt' ? vtRow() : cweRow();
  if (r === null) continue;
  for (const k of Object.keys(tops)) seen[k].drawnTop ||= r.drawn[k] === tops[k];
  const { context, question } = r.prompt;
  const tokens = tok.encode(context, true).length + tok.encode(question).length + tok.encode(target(task, context, r.answers)).length + 1;
  if (tokens > length + ANSWER_SLACK + 1) continue;
  for (const k of Object.keys(tops)) {
    seen[k].most = Math.max(seen[k].most, r.drawn[k]);
    seen[k].least = Math.min(seen[k].least, r.drawn[k]);
  }
  rows.push(JSON.stringify({ id: `${task}-L${length}-${rows.length}`, task, context, question, answers: r.answers }));
}
for (const [k, v] of Object.entries(seen))
  if (v.drawnTop && v.most < tops[k]) fail(`--${k} ${values[k]}: at --length ${length} no row of ${tops[k]} fitted (at most ${v.most}); lower it or raise --length`);
const file = path.join(values.out, `${task}-${length}.jsonl`);
try {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(file, rows.join('\n') + '\n');
} catch (err) {
  fail(`--out ${values.out}: cannot write ${file} (${err.message})`);
}
const ranges = Object.entries(seen).map(([k, v]) => `${k} ${v.least}-${v.most}`).join(', ');
console.log(`wrote ${count} ${task} rows to ${file} (${ranges}; a prompt and its answer within ${length + ANSWER_SLACK} tokens)`);
