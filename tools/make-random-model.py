"""A small Llama with random weights and the project's tokenizer: the default model until a
trained one ships. It retrieves nothing; it exists so the whole path runs on any machine.

    python3 tools/make-random-model.py --tokenizer models/tokenizer --out models/quest-random-tiny
"""
import argparse
import json
import os
import shutil

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with open(os.path.join(args.tokenizer, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    assert (vocab["<s>"], vocab["</s>"], vocab["<pad>"]) == (0, 1, 2), "special ids moved"
    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab), hidden_size=256, intermediate_size=768, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=0, eos_token_id=1, pad_token_id=2,
    )
    model = AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16)
    model.save_pretrained(args.out)
    GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2).save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(args.out, name))
    print(f"saved {args.out}: {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
