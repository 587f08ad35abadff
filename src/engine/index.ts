/** The typed face of the native engine: loading the addon, choosing a backend, models. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuestError, errorMessage } from '../errors.js';
import type { NativeAddon, NativeBackendInfo, NativeModel, NativeModelSpec } from './native.js';

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

/**
 * Which backend a run uses and why. The CUDA build holds the decode-attention kernels
 * (quest bench-attention) but not yet the model's forward pass, so every run of a model
 * uses the CPU reference.
 */
export function chooseBackend(requested: 'auto' | BackendName = 'auto'): BackendChoice {
  const info = native().backendInfo();
  const built: BackendName[] = info.cuda.compiled ? ['cpu', 'cuda'] : ['cpu'];
  if (requested === 'cuda')
    throw new QuestError('--device cuda: the CUDA forward pass is not implemented yet; use --device cpu (or auto)');
  let reason: string;
  if (!info.cuda.compiled) reason = info.cuda.error;
  else if (info.cuda.devices === 0) reason = `no usable GPU (${info.cuda.error})`;
  else reason = `GPU ${info.cuda.deviceName} found, but the CUDA forward pass is not implemented yet`;
  if (requested === 'cpu') reason = 'requested with --device cpu';
  return { built, use: 'cpu', reason, info };
}

/** Loads a model into the engine; a native failure comes back as a QuestError naming `source`. */
export async function loadModel(spec: NativeModelSpec, source: string): Promise<NativeModel> {
  try {
    return await native().loadModel(spec);
  } catch (err) {
    if (err instanceof QuestError) throw err;
    throw new QuestError(`${source}: ${errorMessage(err)}`);
  }
}
