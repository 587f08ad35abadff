"""Train the project's byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json).

Run where the Python `tokenizers` package is (the GPU machine):
    python3 tools/make-tokenizer.py --text .data/kjv.txt --out models/quest-tiny
Digits are split one by one so that a passkey of any length is read digit by digit, and
the vocabulary stays small (4096) because the model that uses it is small.
"""
import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SPECIAL = ["<s>", "</s>", "<pad>"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True, nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab, special_tokens=SPECIAL, min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train(args.text, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
            "pad_token": "<pad>", "add_bos_token": True, "model_max_length": 32768,
        }, f, indent=2)
    sample = "The pass key is 71432. Remember it. 71432 is the pass key."
    enc = tok.encode(sample)
    print(f"vocab={tok.get_vocab_size()} ids={enc.ids}")
    print(f"tokens={enc.tokens}")


if __name__ == "__main__":
    main()
