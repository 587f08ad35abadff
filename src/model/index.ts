/** A Hugging Face model folder: its config, tensors and stop tokens (the tokenizer loads apart: parity runs need none). */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import type { NativeModelSpec } from '../engine/native.js';
import { parseConfig, readJson } from './config.js';
import { checkQuantTensors } from './quant.js';
import { readTensors } from './safetensors.js';

export interface ModelFolder {
  dir: string;
  name: string;
  spec: NativeModelSpec;
  /** Token ids that end generation (eos from config.json and generation_config.json). */
  stopTokens: number[];
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export function isModelFolder(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

export function openModelFolder(dir: string): ModelFolder {
  if (!existsSync(dir)) throw new QuestError(`--model ${dir}: no such folder`);
  if (!isModelFolder(dir)) throw new QuestError(`--model ${dir}: not a folder (a model folder holds config.json, safetensors and tokenizer.json)`);
  const cfgFile = path.join(dir, 'config.json');
  if (!existsSync(cfgFile)) throw new QuestError(`${cfgFile}: missing (a model folder needs config.json)`);
  const cfg = readJson(cfgFile, 'config.json');
  const arch = parseConfig(cfg, cfgFile);
  const tensors = readTensors(dir);
  checkQuantTensors(arch, tensors, cfgFile);
  const genFile = path.join(dir, 'generation_config.json');
  const gen = existsSync(genFile) ? readJson(genFile, 'generation_config.json') : {};
  const stopTokens = [...new Set([...ids(cfg.eos_token_id), ...ids(gen.eos_token_id)])];
  return { dir: path.resolve(dir), name: path.basename(path.resolve(dir)), spec: { ...arch, tensors }, stopTokens };
}
