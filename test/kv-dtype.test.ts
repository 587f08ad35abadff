// The KV cache's element type on the CPU reference: fp16 and bf16 round what the cache
// stores (as a GPU cache of that type holds it), and the bytes read count 2 a value.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { fixtures, relDiff } from './helpers.js';

describe('--kv-dtype on the CPU', () => {
  const dir = path.join(fixtures, 'llama');
  const folder = openModelFolder(dir);
  const opts = (kvDtype: NativeSequenceOptions['kvDtype']): NativeSequenceOptions => ({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 0, kvDtype });

  it('rounds the cache to fp16 or bf16: the logits move by about that rounding, the bytes read halve', async () => {
    const model = await loadModel(folder.spec, dir, 'cpu');
    const prompt = Int32Array.from({ length: 300 }, (_, i) => (i * 7919) % folder.spec.vocabSize);
    const run = async (kvDtype: NativeSequenceOptions['kvDtype']) => {
      const seq = model.createSequence(opts(kvDtype));
      await seq.prefill(prompt);
      const logits = await seq.feed(Int32Array.of(11, 12, 13));
      const stats = seq.stats();
      seq.close();
      return { logits, stats };
    };
    const f32 = await run('auto');
    const [f16, bf16] = [await run('fp16'), await run('bf16')];
    // A stored value moves by at most its type's unit roundoff (fp16 2^-11, bf16 2^-8). The
    // bounds are 3x the differences observed here (fp32 arithmetic, summed in a fixed order:
    // the same on every machine): fp16 7.8e-4, bf16 7.3e-3 of the largest logit.
    const [d16, dbf] = [relDiff(f16.logits, f32.logits), relDiff(bf16.logits, f32.logits)];
    console.log(`observed-error llama dense fp16-kv-cpu ${d16.toExponential(2)}`);
    console.log(`observed-error llama dense bf16-kv-cpu ${dbf.toExponential(2)}`);
    expect(d16).toBeGreaterThan(0);
    expect(d16).toBeLessThan(2.4e-3);
    expect(dbf).toBeGreaterThan(d16);
    expect(dbf).toBeLessThan(2.2e-2);
    expect(f16.stats.kvBytesRead * 2).toBe(f32.stats.kvBytesRead);
    expect(bf16.stats.kvBytesRead).toBe(f16.stats.kvBytesRead);
    expect(Array.from((await run('fp32')).logits)).toEqual(Array.from(f32.logits));
  });

  it('names an unknown type', async () => {
    const model = await loadModel(folder.spec, dir, 'cpu');
    expect(() => model.createSequence(opts('fp8' as NativeSequenceOptions['kvDtype']))).toThrow(/kvDtype: unknown value 'fp8'/);
  });
});
