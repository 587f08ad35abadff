// Compares two quest eval output folders' tables without their timings: exit 1 if they
// differ. Used to check that a run spread over workers or GPUs gives one run's tables.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const rows = (dir) =>
  JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')).rows.map((r) =>
    JSON.stringify([r.task, r.length, r.policy, r.budget, r.n, r.score, r.tokensPerStep, r.kvKiBPerStep, r.metaKiBPerStep]),
  );
const [a, b] = process.argv.slice(2).map(rows);
const differ = a.length !== b.length || a.some((r, i) => r !== b[i]);
console.log(`${a.length} rows vs ${b.length} rows: ${differ ? 'DIFFERENT' : 'identical'} (timings aside)`);
for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) console.log(`  ${a[i] ?? '-'}\n  ${b[i] ?? '-'}`);
process.exitCode = differ ? 1 : 0;
