/** A bench-latency pool worker (see pool.ts): loads the model once on its device and measures the jobs it is sent. */
import type { BenchConfig } from '../config/index.js';
import { LatencyBench, type LatencyJob, type LatencyRow } from './latency.js';
import { serveJobs } from './pool.js';

let bench: LatencyBench | null = null;

await serveJobs<BenchConfig, LatencyJob, LatencyRow & { copyGBps: number | null }>(
  async (cfg) => {
    bench = await LatencyBench.open(cfg, cfg.device === 'cuda' ? 'cuda' : 'cpu');
  },
  async (job) => ({ ...(await bench!.run(job)), copyGBps: bench!.copyGBps }),
);
