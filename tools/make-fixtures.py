"""Parity fixtures: tiny randomly initialised Hugging Face models and transformers' own outputs.

Run anywhere torch and transformers are installed (CPU is enough; the issue-#22 cases were made
with torch 2.13.0+cpu and transformers 5.18.0, recorded in each expected.json):
    python3 tools/make-fixtures.py --out test/fixtures [--only yarn-llama,qwen3]
Each fixture folder is a model folder the engine loads (config.json, safetensors) plus
expected.json (prompt ids, greedy continuation) and logits.f32 (fp32 logits at every prompt
position, row-major [prompt_len, vocab]). The logits are computed on the CPU in fp32 from the
weights as saved, so that bf16/fp16 rounding is part of the model and not of the comparison.
"""
import argparse
import json
import os

import torch
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
    gen = torch.Generator().manual_seed(seed + 1)
    # ids 0..2 are the special tokens of the config; a prompt free of them keeps any
    # pad/eos handling out of the comparison.
    vocab, length = (cfg.vocab_size, 256) if name in SMALL_CASES else (VOCAB, PROMPT_LEN)
    prompt = torch.randint(3, vocab, (length,), generator=gen).tolist()
    with torch.no_grad():
        logits = ref(torch.tensor([prompt])).logits[0].float().contiguous()
    top2 = torch.topk(logits, 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    cont = (greedy_cached if case.get("cached") else greedy)(ref, prompt, GREEDY_TOKENS)
    logits.numpy().astype("<f4").tofile(os.path.join(folder, "logits.f32"))
    meta = dict(
        arch=name, seed=seed, dtype=str(case["dtype"]).replace("torch.", ""),
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


if __name__ == "__main__":
    main()
