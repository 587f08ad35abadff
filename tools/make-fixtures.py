"""Parity fixtures: tiny randomly initialised Hugging Face models and transformers' own outputs.

Run anywhere torch and transformers are installed (CPU is enough; the issue-#22 cases were made
with torch 2.13.0+cpu and transformers 5.18.0, recorded in each expected.json):
    python3 tools/make-fixtures.py --out test/fixtures [--only yarn-llama,qwen3]
Each fixture folder is a model folder the engine loads (config.json, safetensors) plus
expected.json (prompt ids, greedy continuation) and logits.f32 (fp32 logits at every prompt
position, row-major [prompt_len, vocab]). The logits are computed on the CPU in fp32 from the
weights as saved, so that bf16/fp16 rounding is part of the model and not of the comparison.

The issue-#23 cases (awq-*, gptq-*) are 4-bit checkpoints written by this script's own group-wise
quantizer in the layouts AutoAWQ and AutoGPTQ save (no AutoAWQ needed); their logits are those of
the plain fp32 model whose linear weights are dequantized from the packed tensors by the format's
rules, and quantized.u8 keeps one layer's integers before packing (the round-trip test's reference).
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, Gemma2Config, Gemma3TextConfig, LlamaConfig, MistralConfig,
                          Phi3Config, Qwen2Config, Qwen3Config)

PROMPT_LEN = 300
GREEDY_TOKENS = 24
VOCAB = 512

# Each case covers something the loader must handle: Llama-3 rope scaling and a sharded
# checkpoint; Qwen2's QKV bias, tied embeddings and bf16; Mistral with head_dim 128 in fp16.
CASES = {
    "llama": dict(
        cls=LlamaConfig,
        dtype=torch.float32,
        shard="150KB",
        cfg=dict(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=384, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
            rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                              high_freq_factor=4.0, original_max_position_embeddings=256),
            bos_token_id=1, eos_token_id=2,
        ),
    ),
    "qwen2": dict(
        cls=Qwen2Config,
        dtype=torch.bfloat16,
        shard=None,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=704, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
            rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
            bos_token_id=1, eos_token_id=2,
        ),
    ),
    "mistral": dict(
        cls=MistralConfig,
        dtype=torch.float16,
        shard=None,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=128, max_position_embeddings=4096,
            rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=None,
            bos_token_id=1, eos_token_id=2,
        ),
    ),
}


# The issue-#22 cases are smaller (256 tokens, hidden 128, head_dim 64 as the GPU needs) and
# check one feature each. Their greedy continuation is decoded with transformers' KV cache, as
# generate() does: length-dependent rope (dynamic, longrope) then rotates each key once.
SMALL = dict(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
             num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=4096,
             rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def small(**kw):
    return {**SMALL, **kw}


def to_rope_scaling(cfg):
    """The transformers 4 spelling: rope_theta at the top, the scaling in rope_scaling with "type"."""
    params = cfg.pop("rope_parameters")
    cfg["rope_theta"] = params.pop("rope_theta")
    params.pop("partial_rotary_factor", None)
    params["type"] = params.pop("rope_type")
    cfg["rope_scaling"] = params


SMALL_CASES = {
    # YaRN as Yarn-Llama-2-7b-128k spells it (rope_scaling, "type"), the attention factor from factor.
    "yarn-llama": dict(
        cls=LlamaConfig, dtype=torch.float32, shard=None, cached=True, rewrite=to_rope_scaling,
        cfg=small(max_position_embeddings=512, rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=8.0,
                                       original_max_position_embeddings=64)),
    ),
    # YaRN in the transformers 5 spelling with every optional field: mscale pair, betas, no truncation.
    "yarn-qwen2": dict(
        cls=Qwen2Config, dtype=torch.bfloat16, shard=None, cached=True,
        cfg=small(max_position_embeddings=512, rope_parameters=dict(rope_type="yarn", rope_theta=1000000.0, factor=4.0,
                                       original_max_position_embeddings=128, beta_fast=16.0, beta_slow=2.0,
                                       mscale=1.0, mscale_all_dim=0.5, truncate=False)),
    ),
    # Qwen3: per-head q/k RMSNorm.
    "qwen3": dict(
        cls=Qwen3Config, dtype=torch.bfloat16, shard=None, cached=True,
        cfg=small(rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
    ),
    # Phi-3: fused qkv_proj and gate_up_proj, LongRoPE past its original 128 positions (the prompt is longer).
    "phi3-longrope": dict(
        cls=Phi3Config, dtype=torch.float16, shard=None, cached=True, factors=True,
        cfg=small(original_max_position_embeddings=128, tie_word_embeddings=False,
                  rope_parameters=dict(rope_type="longrope", rope_theta=10000.0)),
    ),
    # Mistral v0.1's sliding window, shorter than the prompt.
    "mistral-window": dict(
        cls=MistralConfig, dtype=torch.float32, shard=None, cached=True,
        cfg=small(sliding_window=48, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    ),
    # Dynamic NTK past max_position_embeddings (128 here): the base grows with the length.
    "dynamic-llama": dict(
        cls=LlamaConfig, dtype=torch.float32, shard=None, cached=True,
        cfg=small(max_position_embeddings=128, rope_parameters=dict(rope_type="dynamic", rope_theta=10000.0, factor=4.0)),
    ),
    # Untied: with Gemma's sqrt(hidden) embedding scale a tied head mostly echoes the last token,
# and the greedy continuation would repeat one token.
# Gemma 2: (1 + w) norms, pre/post norms, GeGLU, scaled embedding, query_pre_attn_scalar,
    # attention and final soft-capping (tight caps, so that they bind), alternating windowed layers.
    # Eager attention: transformers' sdpa path drops the attention soft-cap that Gemma 2 defines.
    "gemma2": dict(
        cls=Gemma2Config, dtype=torch.bfloat16, shard=None, cached=True, eager=True,
        cfg=small(num_hidden_layers=4, sliding_window=48, tie_word_embeddings=False, query_pre_attn_scalar=48,
                  attn_logit_softcapping=4.0, final_logit_softcapping=3.0,
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    ),
    # Gemma 3 text: q/k norms, two rope bases (linear scaling on the full layers), a full layer every 3rd.
    "gemma3": dict(
        cls=Gemma3TextConfig, dtype=torch.bfloat16, shard=None, cached=True,
        cfg=small(num_hidden_layers=3, sliding_window=48, tie_word_embeddings=False, query_pre_attn_scalar=64, sliding_window_pattern=3,
                  rope_parameters=dict(full_attention=dict(rope_type="linear", factor=4.0, rope_theta=1000000.0),
                                       sliding_attention=dict(rope_type="default", rope_theta=10000.0))),
    ),
}


# 4-bit layouts (issue #23). AWQ GEMM, as casper-hansen/AutoAWQ awq/modules/linear/gemm.py
# (WQLinear_GEMM.from_linear) writes it: qweight int32 [in, out/8] and qzeros int32 [in/group, out/8],
# packed along the output dimension, nibble i of a word holding column 8*word + AWQ_ORDER[i]; scales
# fp16 [in/group, out]; w = (q - zero) * scale. GPTQ, as AutoGPTQ/AutoGPTQ
# auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py (QuantLinear.pack) writes it: qweight int32
# [in/8, out] packed along the input dimension, qzeros int32 [in/group, out/8] along the output one,
# nibble i holding index 8*word + i; g_idx int32 [in]; its "gptq" (v1) checkpoint_format stores
# zero - 1 and its forward adds the 1 back, "gptq_v2" (GPTQModel) stores the zero itself.
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
QUANT_CASES = {
    "awq-llama": dict(cls=LlamaConfig, fmt="awq", group=32, sym=False,
                      cfg=small(tie_word_embeddings=False, rope_parameters=dict(rope_type="default", rope_theta=10000.0))),
    "awq-qwen2": dict(cls=Qwen2Config, fmt="awq", group=64, sym=False,
                      cfg=small(rope_parameters=dict(rope_type="default", rope_theta=1000000.0))),
    "gptq-llama": dict(cls=LlamaConfig, fmt="gptq", checkpoint_format="gptq", group=32, sym=True,
                       cfg=small(tie_word_embeddings=False, rope_parameters=dict(rope_type="default", rope_theta=10000.0))),
    "gptq-qwen2": dict(cls=Qwen2Config, fmt="gptq", checkpoint_format="gptq_v2", group=64, sym=False,
                       cfg=small(rope_parameters=dict(rope_type="default", rope_theta=1000000.0))),
}
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
ROUNDTRIP = "model.layers.0.mlp.down_proj"  # in != out: a transposed layout would not pass


def quantize(w, group, sym):
    """Group-wise 4-bit min-max quantization of w [out, in]: ints [out, in], zeros [groups, out], fp16 scales [groups, out]."""
    out, inp = w.shape
    g = w.reshape(out, inp // group, group)
    if sym:  # GPTQ's symmetric grid: zero at 8, scale from the larger magnitude
        scale = (2 * g.abs().amax(-1) / 15).clamp(min=1e-5).half().float()
        zero = torch.full_like(scale, 8.0)
    else:
        lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
        scale = ((hi - lo) / 15).clamp(min=1e-5).half().float()
        zero = torch.round(-lo / scale).clamp(0, 15)
    q = torch.clamp(torch.round(g / scale[..., None]) + zero[..., None], 0, 15).reshape(out, inp).to(torch.int32)
    return q, zero.to(torch.int32).t().contiguous(), scale.half().t().contiguous()


def pack_cols(x, order):
    """int32 [rows, cols] of 4-bit values -> [rows, cols/8], nibble i of word j holding column 8j + order[i]."""
    x = x.reshape(x.shape[0], -1, 8)[:, :, order].to(torch.int64)
    word = sum(x[:, :, i] << (4 * i) for i in range(8))
    return ((word + 2**31) % 2**32 - 2**31).to(torch.int32)


def unpack_cols(x, order):
    nib = torch.stack([(x.to(torch.int64) >> (4 * i)) & 15 for i in range(8)], -1)
    out = torch.empty_like(nib)
    out[:, :, order] = nib
    return out.reshape(x.shape[0], -1).to(torch.int32)


def pack(fmt, checkpoint_format, q, zeros, scales):
    """The checkpoint tensors of one linear layer (suffix -> tensor) from ints q [out, in]."""
    if fmt == "awq":
        return {"qweight": pack_cols(q.t().contiguous(), AWQ_ORDER), "qzeros": pack_cols(zeros, AWQ_ORDER), "scales": scales}
    seq = list(range(8))
    stored = zeros - 1 if checkpoint_format == "gptq" else zeros
    inp = q.shape[1]
    group = inp // zeros.shape[0]
    return {"qweight": pack_cols(q.contiguous(), seq).t().contiguous(), "qzeros": pack_cols(stored, seq), "scales": scales,
            "g_idx": torch.arange(inp, dtype=torch.int32) // group}


def dequantize(fmt, checkpoint_format, t):
    """fp32 w [out, in] from the packed tensors alone, by the format's rules; also its ints and zeros."""
    seq = list(range(8))
    if fmt == "awq":
        q, zeros = unpack_cols(t["qweight"], AWQ_ORDER).t(), unpack_cols(t["qzeros"], AWQ_ORDER)
    else:
        q, zeros = unpack_cols(t["qweight"].t().contiguous(), seq), unpack_cols(t["qzeros"], seq)
        zeros = zeros + 1 if checkpoint_format == "gptq" else zeros
    group = q.shape[1] // zeros.shape[0]
    s = t["scales"].float().t().repeat_interleave(group, 1)
    z = zeros.t().repeat_interleave(group, 1)
    # (q - z) is a small integer and the scale an fp16: their fp32 product is exact.
    return ((q - z).float() * s).contiguous(), q, zeros


def make_quant(name, case, root, seed):
    torch.manual_seed(seed)
    cfg = case["cls"](**case["cfg"])
    cfg.initializer_range = 0.08
    model = AutoModelForCausalLM.from_config(cfg).float().eval()
    fmt, ckpt, group = case["fmt"], case.get("checkpoint_format"), case["group"]
    tensors, record = {}, None
    for pname, p in model.state_dict().items():
        prefix = pname.rsplit(".", 1)[0]
        if pname.endswith(".weight") and any(prefix.endswith(l) for l in LINEARS):
            q, zeros, scales = quantize(p, group, case["sym"])
            packed = pack(fmt, ckpt, q, zeros, scales)
            w, q2, z2 = dequantize(fmt, ckpt, packed)
            assert torch.equal(q2, q) and torch.equal(z2, zeros), f"{name}: {prefix} does not round-trip"
            if prefix == ROUNDTRIP:
                record = torch.cat([q.flatten(), zeros.flatten()]).to(torch.uint8)
            p.copy_(w)
            tensors.update({f"{prefix}.{k}": v for k, v in packed.items()})
        elif not (cfg.tie_word_embeddings and pname == "lm_head.weight"):
            # Embeddings, norms, biases and the LM head stay fp16, as quantized checkpoints keep them.
            p.copy_(p.half().float())
            tensors[pname] = p.half().contiguous()
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    qcfg = dict(quant_method=fmt, bits=4, group_size=group)
    qcfg.update(dict(zero_point=True, version="gemm") if fmt == "awq" else
                dict(desc_act=False, sym=case["sym"], checkpoint_format=ckpt))
    saved = {**cfg.to_dict(), "architectures": [case["cls"].__name__.replace("Config", "ForCausalLM")],
             "dtype": "float16", "quantization_config": qcfg}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(saved, f, indent=2)
    record.numpy().tofile(os.path.join(folder, "quantized.u8"))
    reference(model, folder, name, seed, cfg.vocab_size, greedy_cached,
              dict(dtype="int4", quantization=qcfg, roundtrip=ROUNDTRIP,
                   note="logits of the fp32 model dequantized from the packed tensors; quantized.u8: "
                        f"{ROUNDTRIP}'s ints [out, in] then zeros [groups, out], before packing"))


def greedy_cached(model, ids, n):
    out = []
    with torch.no_grad():
        res = model(torch.tensor([ids]), use_cache=True)
        for _ in range(n):
            tok = int(torch.argmax(res.logits[0, -1]))
            out.append(tok)
            res = model(torch.tensor([[tok]]), past_key_values=res.past_key_values, use_cache=True)
    return out


def greedy(model, ids, n):
    out = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([out])).logits[0, -1]
            out.append(int(torch.argmax(logits)))
    return out[len(ids):]


def make(name, case, root, seed):
    torch.manual_seed(seed)
    kw = dict(case["cfg"])
    if case.get("factors"):  # LongRoPE factors: one per rotated pair, long ones above the short ones
        half = kw["head_dim"] // 2
        kw["rope_parameters"] = {**kw["rope_parameters"],
                                 "short_factor": [round(1.0 + 0.02 * i, 4) for i in range(half)],
                                 "long_factor": [round(1.5 + 0.25 * i, 4) for i in range(half)]}
    cfg = case["cls"](**kw)
    # A larger init than the default 0.02 makes the logits peaked, so the greedy argmax is
    # decided by a margin far above fp32 rounding and the token comparison is meaningful.
    cfg.initializer_range = 0.08
    model = AutoModelForCausalLM.from_config(cfg).to(case["dtype"])
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    kw = {"max_shard_size": case["shard"]} if case["shard"] else {}
    model.save_pretrained(folder, **kw)
    if case.get("rewrite"):
        path = os.path.join(folder, "config.json")
        with open(path) as f:
            saved = json.load(f)
        case["rewrite"](saved)
        with open(path, "w") as f:
            json.dump(saved, f, indent=2)

    attn = {"attn_implementation": "eager"} if case.get("eager") else {}
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **attn).eval()
    cont_fn = greedy_cached if case.get("cached") else greedy
    reference(ref, folder, name, seed, cfg.vocab_size if name in SMALL_CASES else VOCAB, cont_fn,
              dict(dtype=str(case["dtype"]).replace("torch.", "")), 256 if name in SMALL_CASES else PROMPT_LEN)


def reference(ref, folder, name, seed, vocab, cont_fn, extra, length=256):
    """transformers' fp32 logits at every prompt position and greedy continuation, into folder."""
    gen = torch.Generator().manual_seed(seed + 1)
    # ids 0..2 are the special tokens of the config; a prompt free of them keeps any
    # pad/eos handling out of the comparison.
    prompt = torch.randint(3, vocab, (length,), generator=gen).tolist()
    with torch.no_grad():
        logits = ref(torch.tensor([prompt])).logits[0].float().contiguous()
    top2 = torch.topk(logits, 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    cont = cont_fn(ref, prompt, GREEDY_TOKENS)
    logits.numpy().astype("<f4").tofile(os.path.join(folder, "logits.f32"))
    meta = dict(
        arch=name, seed=seed, **extra,
        prompt_ids=prompt, greedy_ids=cont, vocab_size=vocab,
        max_abs_logit=float(logits.abs().max()), min_top2_margin=margin,
        attn_implementation=ref.config._attn_implementation,
        transformers=__import__("transformers").__version__, torch=torch.__version__,
    )
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(meta, f)
    print(f"{name}: saved {folder} dtype={meta['dtype']} max|logit|={meta['max_abs_logit']:.3f} "
          f"min top-2 margin={margin:.4f} greedy={cont[:8]}...")


def trained(folder, out, seed, prompt_len=96):
    """Expected logits of a model that ships (not copied: the test reads it where it is)."""
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    vocab = ref.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    prompt = [ref.config.bos_token_id] + torch.randint(3, vocab, (prompt_len - 1,), generator=gen).tolist()
    with torch.no_grad():
        logits = ref(torch.tensor([prompt])).logits[0].float().contiguous()
    os.makedirs(out, exist_ok=True)
    logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.f32"))
    cont = greedy(ref, prompt, GREEDY_TOKENS)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(dict(model=folder, seed=seed, prompt_ids=prompt, greedy_ids=cont, vocab_size=vocab,
                       max_abs_logit=float(logits.abs().max()),
                       transformers=__import__("transformers").__version__, torch=torch.__version__), f)
    print(f"{folder}: expected logits for {len(prompt)} tokens in {out}, greedy={cont[:8]}...")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--trained", help="a shipped model folder: write only its expected logits to --out")
    ap.add_argument("--only", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(8)
    if args.trained:
        trained(args.trained, args.out, args.seed)
        return
    only = set(args.only.split(",")) if args.only else None
    for i, (name, case) in enumerate({**CASES, **SMALL_CASES}.items()):
        if only is None or name in only:
            make(name, case, args.out, args.seed + 100 * i)
    for i, (name, case) in enumerate(QUANT_CASES.items()):
        if only is None or name in only:
            make_quant(name, case, args.out, args.seed + 5000 + 100 * i)


if __name__ == "__main__":
    main()
