/** quest models check DIR: whether a model folder is served, on which backends, and what stops it. */
import type { Command } from 'commander';
import { QuestError } from '../errors.js';
import { native } from '../engine/index.js';
import type { NativeModelSpec } from '../engine/native.js';
import { openModelFolder } from '../model/index.js';

/** Per backend, why it does not serve the spec ('' when it does): the engine's own rule (engine/served.cpp). */
export function servedBy(spec: NativeModelSpec): { cpu: string; cuda: string } {
  return native().servedBy(spec);
}

function describe(s: NativeModelSpec): string {
  const window = s.slidingWindow ? `, sliding window ${s.slidingWindow} on ${s.slidingLayers.filter(Boolean).length} of ${s.numLayers} layers` : '';
  const quant = s.quant ? `, ${s.quant.method.toUpperCase()} 4-bit, group size ${s.quant.groupSize}` : '';
  return `${s.arch}${quant}, ${s.numLayers} layers, ${s.numHeads} heads (${s.numKvHeads} KV) of ${s.headDim}, rope ${s.rope.type}, ${s.maxPositions} positions${window}`;
}

export function modelsCommand(program: Command): void {
  const models = program.command('models').description('what the engine serves');
  models
    .command('check')
    .description('read a model folder (config.json and safetensors headers, no weights) and say which backends serve it')
    .argument('<dir>', 'a Hugging Face model folder')
    .action((dir: string) => {
      // A config.json the engine cannot read is refused here, naming the file and field.
      const folder = openModelFolder(dir);
      const why = servedBy(folder.spec);
      const line = (b: 'cpu' | 'cuda') => `${b.padEnd(5)} ${why[b] ? `not served: ${why[b]}` : 'served'}`;
      process.stdout.write([`${folder.dir}: ${describe(folder.spec)}`, line('cpu'), line('cuda')].join('\n') + '\n');
      if (why.cpu && why.cuda) throw new QuestError(`${folder.dir}: served by no backend`);
    });
}
