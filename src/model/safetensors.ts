/** safetensors headers: where each tensor's bytes are, checked against the file's size. */
import { closeSync, existsSync, fstatSync, readSync } from 'node:fs';
import path from 'node:path';
import { QuestError } from '../errors.js';
import type { NativeDType, NativeTensorRef } from '../engine/native.js';
import { openRegular, readJson } from './config.js';

// Bytes per element of every safetensors dtype (safetensors' Dtype::size), to check any
// entry's extent; the engine reads F32, F16 and BF16 weights, and I32 packed 4-bit tensors.
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};
const ENGINE_DTYPES = new Set<string>(['F32', 'F16', 'BF16']);
// A header larger than this is not a header (the format caps it at 100 MB).
const MAX_HEADER = 100_000_000;

/** Tensors the engine reads: weights and biases under model.* and lm_head.*, and 4-bit layers' packed parts. */
function isWeight(name: string): boolean {
  return /^(model\.|lm_head\.)/.test(name) && /\.(weight|bias|qweight|qzeros|scales|g_idx)$/.test(name);
}
// The packed parts of a 4-bit layer (src/model/quant.ts checks them against the config).
const isPacked = (name: string) => /\.(qweight|qzeros|g_idx)$/.test(name);

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** One header entry, checked: dtype, shape and offsets well-formed and consistent with each other. */
function checkEntry(file: string, name: string, e: unknown, dataSize: number): Entry {
  const where = `${file}: tensor ${name}`;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new QuestError(`${where} is ${JSON.stringify(e)}, not an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: offs } = e as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw new QuestError(`${where} has dtype ${JSON.stringify(dtype)}, not a string`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new QuestError(`${where} has a malformed shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0])
    throw new QuestError(`${where} has malformed data_offsets ${JSON.stringify(offs)}`);
  const [begin, end] = offs as [number, number];
  if (end > dataSize) throw new QuestError(`${where} ends at data offset ${end}, past the end of the file (${dataSize} bytes of data)`);
  const size = DTYPE_BYTES[dtype];
  if (isPacked(name) ? dtype !== 'I32' : isWeight(name) && !ENGINE_DTYPES.has(dtype))
    throw new QuestError(`${where} has dtype ${dtype}; supported: ${isPacked(name) ? 'I32 (packed 4-bit)' : 'F32, F16, BF16'}`);
  if (size !== undefined) {
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * size !== end - begin)
      throw new QuestError(`${where} is ${dtype}${JSON.stringify(shape)} (${count * size} bytes) but spans ${end - begin} bytes`);
    if (begin % size !== 0) throw new QuestError(`${where} starts at data offset ${begin}, not a multiple of its ${dtype} element size (${size} bytes)`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

export function readSafetensorsHeader(file: string): NativeTensorRef[] {
  const fd = openRegular(file, 'a safetensors file');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || readSync(fd, head, 0, 8, 0) !== 8) throw new QuestError(`${file}: too short to be a safetensors file`);
    const n = head.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) throw new QuestError(`${file}: header length ${n} runs past the end of the file (${size} bytes)`);
    const buf = Buffer.alloc(Number(n));
    readSync(fd, buf, 0, buf.length, 8);
    let header: unknown;
    try {
      header = JSON.parse(buf.toString('utf8'));
    } catch {
      throw new QuestError(`${file}: safetensors header is not valid JSON`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw new QuestError(`${file}: safetensors header is ${JSON.stringify(header)}, not a JSON object`);
    const dataStart = 8 + buf.length;
    const dataSize = size - dataStart;
    const entries = Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, e]) => checkEntry(file, name, e, dataSize));
    // No two tensors may share bytes: one written over another is a corrupt file.
    const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i].begin < sorted[i - 1].end)
        throw new QuestError(`${file}: tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap (data offsets ${sorted[i - 1].begin}-${sorted[i - 1].end} and ${sorted[i].begin}-${sorted[i].end})`);
    return entries
      .filter((e) => isWeight(e.name))
      .map((e) => ({ name: e.name, file: path.resolve(file), offset: dataStart + e.begin, nbytes: e.end - e.begin, dtype: e.dtype as NativeDType, shape: e.shape }));
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
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new QuestError(`${index}: "weight_map" must be an object of tensor name -> shard file`);
    for (const [name, shard] of Object.entries(map))
      if (typeof shard !== 'string' || !shard) throw new QuestError(`${index}: weight_map["${name}"] is ${JSON.stringify(shard)}, not a shard file name`);
    const byShard = map as Record<string, string>;
    const shards = [...new Set(Object.values(byShard))];
    const byName = new Map<string, NativeTensorRef>();
    for (const shard of shards) {
      // Lexically inside the folder (a Hugging Face cache links shards to blobs elsewhere, so links are not resolved).
      const file = path.resolve(folder, shard);
      const rel = path.relative(path.resolve(folder), file);
      if (!rel || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) throw new QuestError(`${index}: shard ${shard} is outside the model folder`);
      if (!existsSync(file)) throw new QuestError(`${index}: shard ${shard} is listed but ${file} does not exist`);
      for (const t of readSafetensorsHeader(file)) byName.set(t.name, t);
    }
    for (const [name, shard] of Object.entries(byShard))
      if (isWeight(name) && !byName.has(name)) throw new QuestError(`${index}: tensor ${name} is mapped to ${shard}, which does not hold it`);
    return [...byName.values()];
  }
  if (existsSync(single)) return readSafetensorsHeader(single);
  throw new QuestError(`${folder}: no model.safetensors or model.safetensors.index.json`);
}
