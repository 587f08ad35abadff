/** safetensors headers: where each tensor's bytes are, checked against the file's size. */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import type { NativeDType, NativeTensorRef } from '../engine/native.js';
import { readJson } from './config.js';

const DTYPE_BYTES: Record<NativeDType, number> = { F32: 4, F16: 2, BF16: 2 };
// A header larger than this is not a header (the format caps it at 100 MB).
const MAX_HEADER = 100_000_000;

/** Tensors the engine reads: weights and biases under model.* and lm_head.*. */
function isWeight(name: string): boolean {
  return /^(model\.|lm_head\.)/.test(name) && /\.(weight|bias)$/.test(name);
}

export function readSafetensorsHeader(file: string): NativeTensorRef[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    throw new QuestError(`${file}: cannot open`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || readSync(fd, head, 0, 8, 0) !== 8) throw new QuestError(`${file}: too short to be a safetensors file`);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) throw new QuestError(`${file}: header length ${n} runs past the end of the file (${size} bytes)`);
    const buf = Buffer.alloc(Number(n));
    readSync(fd, buf, 0, buf.length, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(buf.toString('utf8'));
    } catch {
      throw new QuestError(`${file}: safetensors header is not valid JSON`);
    }
    const dataStart = 8 + buf.length;
    const dataSize = size - dataStart;
    const out: NativeTensorRef[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__' || !isWeight(name)) continue;
      const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = String(e.dtype) as NativeDType;
      if (!(dtype in DTYPE_BYTES)) throw new QuestError(`${file}: tensor ${name} has dtype ${String(e.dtype)}; supported: F32, F16, BF16`);
      const shape = e.shape;
      const offs = e.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
        throw new QuestError(`${file}: tensor ${name} has a malformed shape ${JSON.stringify(shape)}`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[1] < offs[0])
        throw new QuestError(`${file}: tensor ${name} has malformed data_offsets ${JSON.stringify(offs)}`);
      const [begin, end] = offs as [number, number];
      if (end > dataSize)
        throw new QuestError(`${file}: tensor ${name} ends at data offset ${end}, past the end of the file (${dataSize} bytes of data)`);
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (count * DTYPE_BYTES[dtype] !== end - begin)
        throw new QuestError(`${file}: tensor ${name} is ${dtype}${JSON.stringify(shape)} (${count * DTYPE_BYTES[dtype]} bytes) but spans ${end - begin} bytes`);
      out.push({ name, file: path.resolve(file), offset: dataStart + begin, nbytes: end - begin, dtype, shape: shape as number[] });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** All weight tensors of a folder: model.safetensors or a sharded model.safetensors.index.json. */
export function readTensors(folder: string): NativeTensorRef[] {
  const single = path.join(folder, 'model.safetensors');
  const index = path.join(folder, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const idx = readJson(index, 'the safetensors index');
    const map = idx.weight_map;
    if (typeof map !== 'object' || map === null) throw new QuestError(`${index}: missing "weight_map"`);
    const shards = [...new Set(Object.values(map as Record<string, string>))];
    const byName = new Map<string, NativeTensorRef>();
    for (const shard of shards) {
      const file = path.join(folder, shard);
      if (!existsSync(file)) throw new QuestError(`${index}: shard ${shard} is listed but ${file} does not exist`);
      for (const t of readSafetensorsHeader(file)) byName.set(t.name, t);
    }
    for (const [name, shard] of Object.entries(map as Record<string, string>))
      if (isWeight(name) && !byName.has(name)) throw new QuestError(`${index}: tensor ${name} is mapped to ${shard}, which does not hold it`);
    return [...byName.values()];
  }
  if (existsSync(single)) return readSafetensorsHeader(single);
  throw new QuestError(`${folder}: no model.safetensors or model.safetensors.index.json`);
}
