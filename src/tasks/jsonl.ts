/** Reading a user's JSONL file, naming the file and line of anything malformed. */
import { existsSync, readFileSync } from 'node:fs';
import { QuestError } from '../errors.js';

/** `required`: field names; a list among them is alternatives, any one of which will do (AIME's "Problem" or "problem"). */
export function readJsonl<T>(file: string, required: readonly (string | readonly string[])[], limit = Infinity): T[] {
  if (!existsSync(file)) throw new QuestError(`${file}: no such file`);
  const out: T[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length && out.length < limit; i++) {
    if (!lines[i].trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(lines[i]);
    } catch {
      throw new QuestError(`${file}:${i + 1}: not valid JSON`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new QuestError(`${file}:${i + 1}: not a JSON object`);
    const missing = required.filter((k) => ![k].flat().some((x) => x in row));
    const named = (k: string | readonly string[]) => [k].flat().map((x) => `"${x}"`).join(' or ');
    if (missing.length) throw new QuestError(`${file}:${i + 1}: missing field ${missing.map(named).join(', ')}`);
    out.push(row as T);
  }
  return out;
}
