#!/usr/bin/env python3
"""A Llama-shaped AWQ model folder with random weights, for capacity runs of `quest eval`
(issue #23: a 70B shape on one card) where no real checkpoint can be fetched.

    python3 tools/make-random-model.py OUT                 # Meta-Llama-3-70B's shape, AWQ
    python3 tools/make-random-model.py OUT --hidden 128 --intermediate 256 --layers 2 \
        --heads 2 --kv-heads 1 --vocab 4096 --group 32      # a small one, to check the format

The folder holds config.json (LlamaForCausalLM with AutoAWQ's GEMM quantization_config),
model-*.safetensors shards with model.safetensors.index.json, and the shipped model's
tokenizer (models/quest-tiny: its ids are below any vocabulary size given here). Packed
weights (qweight, qzeros: random bits) and fp16 scales are drawn once per tensor shape and
written for every layer (each layer stores its own copy, so the folder and the GPU hold what
a real checkpoint would; the values carry no meaning). Needs numpy only.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(ROOT, "models", "quest-tiny")
SHARD_BYTES = 4 << 30


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    # meta-llama/Meta-Llama-3-70B config.json; AutoAWQ's default q_group_size 128.
    p.add_argument("--hidden", type=int, default=8192)
    p.add_argument("--intermediate", type=int, default=28672)
    p.add_argument("--layers", type=int, default=80)
    p.add_argument("--heads", type=int, default=64)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--max-positions", type=int, default=131072)
    p.add_argument("--group", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for flag in ("hidden", "intermediate", "layers", "heads", "kv_heads", "vocab", "max_positions", "group"):
        if getattr(a, flag) <= 0:
            p.error(f"--{flag.replace('_', '-')} {getattr(a, flag)}: must be positive")
    if a.heads % a.kv_heads:
        p.error(f"--heads {a.heads}: must be a multiple of --kv-heads {a.kv_heads}")
    if a.hidden % a.heads or a.hidden % a.group or a.intermediate % a.group:
        p.error("--hidden must divide by --heads, and --hidden and --intermediate by --group")
    return a


class Shards:
    """Writes tensors into safetensors shards of about SHARD_BYTES, then the index."""

    def __init__(self, out):
        self.out, self.done, self.pending, self.size, self.total = out, [], [], 0, 0

    def add(self, name, array):
        self.pending.append((name, array))
        self.size += array.nbytes
        if self.size >= SHARD_BYTES:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, a in self.pending:
            dtype = {np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}[a.dtype]
            header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
            offset += a.nbytes
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)
        path = os.path.join(self.out, f"part-{len(self.done)}.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(blob)) + blob)
            for _, a in self.pending:
                f.write(np.ascontiguousarray(a).tobytes())
        self.done.append(([n for n, _ in self.pending], path))
        self.total += offset
        self.pending, self.size = [], 0

    def finish(self):
        self.flush()
        weight_map, n = {}, len(self.done)
        for i, (names, path) in enumerate(self.done):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(path, os.path.join(self.out, final))
            weight_map.update({name: final for name in names})
        with open(os.path.join(self.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": self.total}, "weight_map": weight_map}, f, indent=1)


def main():
    a = parse()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    head_dim = a.hidden // a.heads
    kv = a.kv_heads * head_dim
    # AutoAWQ's WQLinear_GEMM: qweight [in, out/8] and qzeros [in/group, out/8] int32, scales [in/group, out] fp16.
    shapes = {
        "self_attn.q_proj": (a.hidden, a.hidden),
        "self_attn.k_proj": (a.hidden, kv),
        "self_attn.v_proj": (a.hidden, kv),
        "self_attn.o_proj": (a.hidden, a.hidden),
        "mlp.gate_proj": (a.hidden, a.intermediate),
        "mlp.up_proj": (a.hidden, a.intermediate),
        "mlp.down_proj": (a.intermediate, a.hidden),
    }
    bits = lambda *s: rng.integers(-(2**31), 2**31, size=s, dtype=np.int64).astype(np.int32)
    packed = {}
    for (i, o) in sorted(set(shapes.values())):
        # Scales about 1/(16 sqrt(in)): a product's sum stays near the input's size.
        scales = (rng.uniform(0.5, 1.5, size=(i // a.group, o)) / (16 * np.sqrt(i))).astype(np.float16)
        packed[(i, o)] = (bits(i, o // 8), bits(i // a.group, o // 8), scales)
    ones = np.ones(a.hidden, dtype=np.float16)
    shards = Shards(a.out)
    shards.add("model.embed_tokens.weight", (rng.standard_normal((a.vocab, a.hidden), dtype=np.float32) * 0.02).astype(np.float16))
    for layer in range(a.layers):
        p = f"model.layers.{layer}."
        shards.add(p + "input_layernorm.weight", ones)
        shards.add(p + "post_attention_layernorm.weight", ones)
        for name, shape in shapes.items():
            qweight, qzeros, scales = packed[shape]
            shards.add(p + name + ".qweight", qweight)
            shards.add(p + name + ".qzeros", qzeros)
            shards.add(p + name + ".scales", scales)
    shards.add("model.norm.weight", ones)
    shards.add("lm_head.weight", (rng.standard_normal((a.vocab, a.hidden), dtype=np.float32) * 0.02).astype(np.float16))
    shards.finish()
    tok = json.load(open(os.path.join(TOKENIZER, "config.json")))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "dtype": "float16",
        "vocab_size": a.vocab,
        "hidden_size": a.hidden,
        "intermediate_size": a.intermediate,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": a.max_positions,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": tok["bos_token_id"],
        "eos_token_id": tok["eos_token_id"],
        # Meta-Llama-3-70B's rope (theta 500000); llama3 scaling as Llama 3.1's config gives it.
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": a.group, "zero_point": True, "version": "gemm"},
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(os.path.join(TOKENIZER, name), os.path.join(a.out, name))
    print(f"{a.out}: {a.layers} layers, {shards.total / 2**30:.1f} GiB in {len(shards.done)} shards")


if __name__ == "__main__":
    main()
