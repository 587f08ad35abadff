/** The typed face of the native engine: loading the addon, choosing a backend, models. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuestError, errorMessage } from '../errors.js';
import type { NativeAddon, NativeBackendInfo, NativeModel, NativeModelSpec, NativeSetting } from './native.js';

export type * from './native.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const addonPath = path.join(root, 'cuda', 'build', 'Release', 'quest_engine.node');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    if (!existsSync(addonPath))
      throw new QuestError(`the native engine is not built (${addonPath} is missing): run npm install, or npm run build:addon`);
    addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
  }
  return addon;
}

export type BackendName = 'cpu' | 'cuda';

export interface BackendChoice {
  /** Backends compiled into the addon. */
  built: BackendName[];
  /** The backend runs will use. */
  use: BackendName;
  reason: string;
  info: NativeBackendInfo;
}

/** A run's settings, by the keys the engine declares: the values some settings take decide whether a run can use the GPU. */
export type BackendNeeds = Record<string, unknown>;

/** Whether an engine error is a KV cache refused for want of device memory (gpu_sequence.cu check_fits: "a KV cache of N tokens needs ... about M tokens would fit"). */
export function cacheDoesNotFit(err: unknown): boolean {
  return /a KV cache of \d+ tokens needs .* tokens would fit/.test(errorMessage(err));
}

/** A setting's CLI flag: its key in kebab-case. */
export function flagOf(s: NativeSetting): string {
  return `--${s.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Why a run with these settings cannot use the GPU forward pass (the engine declares the values it refuses), or null when it can. */
export function gpuRefusal(needs: BackendNeeds | undefined): string | null {
  if (!needs) return null;
  if (needs.diagnostics === true) return '--diagnostics: the attention diagnostics are computed on the CPU backend only';
  for (const s of native().describePolicies().settings) {
    const v = needs[s.key];
    if (typeof v === 'string' && s.gpuRefuses && Object.hasOwn(s.gpuRefuses, v)) return `${flagOf(s)} ${v}: ${s.gpuRefuses[v]}`;
    if (typeof v === 'number' && s.gpuRefusesOther && v !== s.default) return `${flagOf(s)} ${v}: ${s.gpuRefusesOther}`;
  }
  return null;
}

/** Numbers as a sentence lists them: "1, 2, 4 or 8". */
export function orList(values: number[]): string {
  return values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}` : String(values[0]);
}

/** Whether an NVIDIA driver is loaded here (on Linux its /proc entry or device node; WSL's GPU device). */
export function nvidiaDriver(): boolean {
  return ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/dev/dxg'].some((f) => existsSync(f));
}

/**
 * Why the CUDA build sees no GPU. Without a driver the CUDA runtime reports "driver version
 * is insufficient", which would send the user after a driver upgrade on a machine with no GPU.
 */
export function noGpu(info: NativeBackendInfo, driver: boolean): string {
  if (!driver) return 'no usable GPU (none found: no NVIDIA driver on this machine)';
  return `no usable GPU (${info.cuda.error || 'no CUDA device'})`;
}

/**
 * Which backend a run uses and why: the GPU when one is present and it implements what the
 * run asks for (auto), the CPU reference otherwise; --device cuda insists and fails with the
 * reason when it cannot be served.
 */
export function chooseBackend(requested: 'auto' | BackendName = 'auto', needs?: BackendNeeds): BackendChoice {
  const info = native().backendInfo();
  const built: BackendName[] = info.cuda.compiled ? ['cpu', 'cuda'] : ['cpu'];
  if (requested === 'cpu') return { built, use: 'cpu', reason: 'requested with --device cpu', info };
  let refusal: string | null;
  if (!info.cuda.compiled) refusal = info.cuda.error;
  else if (info.cuda.devices === 0) refusal = noGpu(info, nvidiaDriver());
  else refusal = gpuRefusal(needs);
  if (refusal === null) return { built, use: 'cuda', reason: `GPU ${info.cuda.deviceName}`, info };
  if (requested === 'cuda') throw new QuestError(`--device cuda: ${refusal}; use --device cpu (or auto)`);
  return { built, use: 'cpu', reason: refusal, info };
}

/** --devices must name distinct GPUs of this machine, for a run that the GPU can serve. */
export function checkDevices(devices: number[], choice: BackendChoice): void {
  if (!devices.length) return;
  const n = choice.info.cuda.devices;
  const named = `--devices ${devices.join(',')}`;
  if (n === 0) throw new QuestError(`${named}: ${choice.info.cuda.compiled ? noGpu(choice.info, nvidiaDriver()) : choice.info.cuda.error}`);
  const missing = devices.filter((d) => d >= n);
  if (missing.length) throw new QuestError(`${named}: this machine has ${n} GPU${n > 1 ? 's' : ''} (0 to ${n - 1}), not ${missing.join(', ')}`);
  if (new Set(devices).size < devices.length) throw new QuestError(`${named}: a GPU is named twice`);
  if (choice.use !== 'cuda') throw new QuestError(`${named}: this run cannot use the GPU (${choice.reason})`);
}

/** Loads a model into the engine; a native failure comes back as a QuestError naming `source`. */
export async function loadModel(spec: NativeModelSpec, source: string, backend: BackendName = 'cpu'): Promise<NativeModel> {
  try {
    return await native().loadModel(spec, { backend });
  } catch (err) {
    if (err instanceof QuestError) throw err;
    // The engine's messages about a tensor start with its file, already inside `source`.
    const msg = errorMessage(err);
    throw new QuestError(msg.startsWith(path.resolve(source) + path.sep) ? msg : `${source}: ${msg}`);
  }
}
