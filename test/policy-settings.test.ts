// The CLI's policy flags, config keys and checks come from the settings the engine declares
// (describePolicies): each declared setting must reach the user as a flag and a config key,
// with its declared default and range, and nothing else may.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flagOf, native } from '../src/engine/index.js';
import { quest, tempDirs } from './helpers.js';

const { policies, settings } = native().describePolicies();
const tempDir = tempDirs();

describe('policy settings as the engine declares them', () => {
  it('eval --help offers one flag a setting, with its declared default, and lists every policy', async () => {
    const r = await quest(['eval', '--help']);
    expect(r.exitCode).toBe(0);
    const flags = r.stdout.match(/^\s+--[a-z0-9-]+/gm)!.map((f) => f.trim());
    for (const s of settings) {
      expect(flags).toContain(flagOf(s));
      const line = r.stdout.slice(r.stdout.indexOf(`${flagOf(s)} <`)).split(/\n\s+--/)[0].replace(/\s+/g, ' ');
      expect(line).toContain(`(default: ${s.default})`);
    }
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(`comma-separated: ${policies.map((p) => p.name).join(', ')}`);
  });

  it.each(settings.filter((s) => s.type !== 'choice').map((s) => [s.key, s] as const))(
    'a config file setting %s below its declared minimum is refused, naming the key',
    async (_key, s) => {
      const file = path.join(tempDir(), 'run.yaml');
      writeFileSync(file, `${flagOf(s).slice(2)}: ${(s.min ?? 0) - 1}\n`);
      const r = await quest(['eval', '--config', file]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim()).toBe(`quest: ${file}: ${flagOf(s).slice(2)} must be >= ${s.min}`);
    },
  );
});
