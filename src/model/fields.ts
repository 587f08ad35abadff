/** Reading config.json fields: each refusal names the file and the field. */
import { QuestError } from '../errors.js';

export type Json = Record<string, unknown>;

export function num(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new QuestError(`${file}: missing "${key}"`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new QuestError(`${file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

// The engine holds sizes in 32-bit ints.
export const INT_MAX = 2 ** 31 - 1;

export function posInt(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = num(cfg, key, file, fallback);
  if (!Number.isInteger(v) || v <= 0 || v > INT_MAX) throw new QuestError(`${file}: "${key}" must be a positive integer below 2^31, got ${v}`);
  return v;
}

export function posNum(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = num(cfg, key, file, fallback);
  if (v <= 0) throw new QuestError(`${file}: "${key}" must be a positive number, got ${v}`);
  return v;
}

export function numList(cfg: Json, key: string, file: string, length: number): number[] {
  const v = cfg[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0))
    throw new QuestError(`${file}: "${key}" must be a list of positive numbers`);
  // One factor per rotated pair of a head's dimensions (transformers' _validate_longrope_rope_parameters).
  if (v.length !== length) throw new QuestError(`${file}: "${key}" has ${v.length} factors, but head_dim/2 is ${length}`);
  return v as number[];
}

