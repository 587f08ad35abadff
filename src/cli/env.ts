import type { Command } from 'commander';
import { addonPath, chooseBackend, noGpu, nvidiaDriver } from '../engine/index.js';

export function envCommand(program: Command): void {
  program
    .command('env')
    .description('which backends the engine was built with, which device runs will use, and why')
    .action(() => {
      const c = chooseBackend('auto');
      const cuda = c.info.cuda;
      const lines = [
        `addon:          ${addonPath}`,
        `backends built: ${c.built.join(', ')}`,
        `cuda:           ${cuda.compiled ? `compiled for sm_${cuda.architectures.split(',').join(', sm_')}; the forward pass with every policy, page size and Quest rule (fp16 or bf16 KV cache)` : 'not compiled'}`,
        `gpu:            ${cuda.devices > 0 ? `${cuda.devices} x ${cuda.deviceName} (${cuda.memoryGiB.toFixed(0)} GiB, compute capability ${cuda.computeCapability})` : cuda.compiled ? noGpu(c.info, nvidiaDriver()) : 'not looked for (no CUDA in this build)'}`,
        ...(cuda.compiled
          ? [`prefill gemm:   ${cuda.gemm}`, `prefill attn:   ${cuda.prefillAttention}`, `decode batch:   ${cuda.decodeBatch}`]
          : []),
        `cpu threads:    ${c.info.cpuThreads} (QUEST_THREADS overrides)`,
        `runs will use:  ${c.use} (${c.reason})`,
        `node:           ${process.version}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
