/**
 * 4-bit checkpoints (issue #23): config.json's quantization_config, and the packed tensors'
 * shapes checked against it from the safetensors headers, before any weight is read.
 * AWQ GEMM: casper-hansen/AutoAWQ awq/modules/linear/gemm.py (WQLinear_GEMM): qweight int32
 * [in, out/8], qzeros int32 [in/group, out/8], scales fp16 [in/group, out].
 * GPTQ: AutoGPTQ/AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py (QuantLinear):
 * qweight int32 [in/8, out], qzeros int32 [in/group, out/8], scales [in/group, out], g_idx [in].
 * Field names and defaults: transformers 5.18 utils/quantization_config.py (AwqConfig, GPTQConfig).
 */
import { QuestError } from '../errors.js';
import type { NativeModelSpec, NativeQuant, NativeTensorRef } from '../engine/native.js';
import type { Json } from './fields.js';

// Values packed in one int32 word.
const PACK = 8;

/** quantization_config -> the engine's quant spec; undefined for an unquantized model. */
export function parseQuant(cfg: Json, file: string): NativeQuant | undefined {
  const q = cfg.quantization_config;
  if (q === undefined || q === null) return undefined;
  const where = `${file}: quantization_config`;
  if (typeof q !== 'object' || Array.isArray(q)) throw new QuestError(`${where} must be an object`);
  const c = q as Json;
  const method = c.quant_method;
  if (method !== 'awq' && method !== 'gptq') throw new QuestError(`${where}.quant_method ${JSON.stringify(method)} is not served (served: awq, gptq)`);
  // AwqConfig defaults bits to 4; GPTQConfig requires it.
  const bits = c.bits ?? (method === 'awq' ? 4 : undefined);
  if (bits !== 4) throw new QuestError(`${where}.bits is ${JSON.stringify(bits ?? null)}; only 4-bit weights are served`);
  // Both configs default group_size to 128; -1 means one group over the whole input.
  const group = c.group_size ?? 128;
  if (!Number.isSafeInteger(group) || ((group as number) <= 0 && group !== -1)) throw new QuestError(`${where}.group_size must be a positive integer or -1, got ${JSON.stringify(group)}`);
  const groupSize = group as number;
  if (method === 'awq') {
    // AwqConfig: the format is "version" (legacy) or "format", default gemm; zero_point default true.
    const version = String(c.version ?? c.format ?? 'gemm').toLowerCase();
    if (version !== 'gemm') throw new QuestError(`${where}.version "${version}" is not served (served: gemm)`);
    if (c.zero_point === false) throw new QuestError(`${where}.zero_point false is not served (AWQ GEMM checkpoints carry qzeros)`);
    return { method, bits: 4, groupSize, zeroOffset: 0 };
  }
  if (c.desc_act === true) throw new QuestError(`${where}.desc_act true (act-order) is not served: its g_idx reorders the groups; quantize with desc_act false`);
  // GPTQConfig: "checkpoint_format" (legacy) or "format", default gptq (v1, which stores zero - 1).
  const format = String(c.checkpoint_format ?? c.format ?? 'gptq').toLowerCase();
  if (format !== 'gptq' && format !== 'gptq_v2') throw new QuestError(`${where}.checkpoint_format "${format}" is not served (served: gptq, gptq_v2)`);
  return { method, bits: 4, groupSize, zeroOffset: format === 'gptq' ? 1 : 0 };
}

/** [name suffix, out, in] of each linear layer the loader reads packed, per layer. */
function linears(s: Omit<NativeModelSpec, 'tensors'>): [string, number, number][] {
  const H = s.hiddenSize, qd = s.numHeads * s.headDim, kvd = s.numKvHeads * s.headDim, I = s.intermediateSize;
  const attn: [string, number, number][] = s.arch === 'phi3' ? [['self_attn.qkv_proj', qd + 2 * kvd, H]] : [['self_attn.q_proj', qd, H], ['self_attn.k_proj', kvd, H], ['self_attn.v_proj', kvd, H]];
  const mlp: [string, number, number][] = s.arch === 'phi3' ? [['mlp.gate_up_proj', 2 * I, H]] : [['mlp.gate_proj', I, H], ['mlp.up_proj', I, H]];
  return [...attn, ['self_attn.o_proj', H, qd], ...mlp, ['mlp.down_proj', H, I]];
}

/**
 * Each packed linear's tensors against the config: dtypes, and shapes from its in/out features
 * and the group size. A linear stored as .weight (modules_to_not_convert) is read as stored.
 */
export function checkQuantTensors(spec: Omit<NativeModelSpec, 'tensors'>, tensors: NativeTensorRef[], configFile: string): void {
  const q = spec.quant;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  if (!q) {
    const packed = tensors.find((t) => t.name.endsWith('.qweight'));
    if (packed) throw new QuestError(`${packed.file}: tensor ${packed.name} is packed, but ${configFile} has no quantization_config`);
    return;
  }
  const head = byName.get('lm_head.qweight');
  if (head) throw new QuestError(`${head.file}: tensor lm_head.qweight: a 4-bit LM head is not served (the LM head is read as stored, lm_head.weight)`);
  for (let l = 0; l < spec.numLayers; l++)
    for (const [suffix, out, inp] of linears(spec)) {
      const prefix = `model.layers.${l}.${suffix}`;
      const qweight = byName.get(`${prefix}.qweight`);
      if (!qweight) continue;
      const group = q.groupSize === -1 ? inp : q.groupSize;
      if (inp % group !== 0)
        throw new QuestError(`${configFile}: quantization_config.group_size ${group} does not divide ${prefix}'s ${inp} input features`);
      if (inp % PACK !== 0 || out % PACK !== 0) throw new QuestError(`${configFile}: ${prefix} is ${out}x${inp}; 4-bit packing needs both multiples of ${PACK}`);
      const expect: Record<string, [string[], number[]]> = {
        qweight: [['I32'], q.method === 'awq' ? [inp, out / PACK] : [inp / PACK, out]],
        qzeros: [['I32'], [inp / group, out / PACK]],
        scales: [['F16', 'BF16', 'F32'], [inp / group, out]],
        ...(q.method === 'gptq' && { g_idx: [['I32'], [inp]] }),
      };
      for (const [part, [dtypes, shape]] of Object.entries(expect)) {
        const t = byName.get(`${prefix}.${part}`);
        if (!t) throw new QuestError(`${qweight.file}: ${prefix}.qweight is present but ${prefix}.${part} is missing`);
        if (!dtypes.includes(t.dtype)) throw new QuestError(`${t.file}: tensor ${t.name} has dtype ${t.dtype}, expected ${dtypes.join(' or ')}`);
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
          throw new QuestError(`${t.file}: tensor ${t.name} has shape ${JSON.stringify(t.shape)}, but ${q.method.toUpperCase()} packing of a ${out}x${inp} layer in groups of ${group} (quantization_config.group_size, ${configFile}) needs ${JSON.stringify(shape)}`);
      }
    }
}
