/** Flag parsers that name the flag in their error. */
import { QuestError } from '../errors.js';

export function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n <= 0) throw new QuestError(`${flag}: "${v}" is not a positive integer`);
    return n;
  };
}

export function nonNegativeInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v)) throw new QuestError(`${flag}: "${v}" is not a non-negative integer`);
    return n;
  };
}

export function intList(flag: string) {
  const one = positiveInt(flag);
  return (v: string): number[] => v.split(',').map((x) => one(x.trim()));
}

export function percentList(flag: string) {
  return (v: string): number[] =>
    v.split(',').map((x) => {
      const n = Number(x.trim());
      if (x.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new QuestError(`${flag}: "${x}" is not a percentage in [0, 100]`);
      return n;
    });
}

export function nameList(flag: string) {
  return (v: string): string[] => {
    const names = v.split(',').map((x) => x.trim());
    if (names.some((x) => x === '')) throw new QuestError(`${flag}: "${v}" has an empty name`);
    return names;
  };
}

export function oneOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (v: string): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new QuestError(`${flag}: "${v}" is not one of ${allowed.join(', ')}`);
    return v as T;
  };
}
