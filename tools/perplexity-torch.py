"""transformers' fp32 perplexity on the windows `quest eval --tasks perplexity` reads (issue #19).

Run where torch is (the GPU machine; a CPU works for the shipped model, slowly):
    python3 tools/perplexity-torch.py --model models/quest-tiny --lengths 4096,16384,32768 --out ppl.json
The windows are cut as src/tasks/perplexity.ts cuts them: the text tokenized without special
tokens, window w of length L is tokens [w L, (w + 1) L), and the perplexity is over every
token after the first --prefix of the window, each predicted from all the tokens before it.
The model runs in fp32 whatever its weights' type.
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def git_state():
    """The tree's sha and whether it was clean: QUEST_GIT_STATE's file where a bundle recorded it
    (the GPU machine's copy has no history), else git's own answer, else nothing."""
    if path := os.environ.get("QUEST_GIT_STATE"):
        with open(path) as f:
            state = json.load(f)
        return {"gitSha": state["gitSha"], "gitDirty": state["gitDirty"]}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout.strip())
        return {"gitSha": sha, "gitDirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/quest-tiny")
    ap.add_argument("--text", default="datasets/text/kjv-heldout.txt")
    ap.add_argument("--lengths", default="4096,16384,32768")
    ap.add_argument("--windows", type=int, default=1, help="windows a length (quest eval's --samples)")
    ap.add_argument("--prefixes", default="64", help="dense prefixes (quest eval's --ppl-prefix), comma-separated")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    with open(args.text, encoding="utf-8") as f:
        ids = tok.encode(f.read(), add_special_tokens=False).ids
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa").to(device).eval()
    rows = []
    for L in (int(x) for x in args.lengths.split(",")):
        for w in range(min(args.windows, len(ids) // L)):
            window = torch.tensor(ids[w * L:(w + 1) * L], device=device)[None]
            with torch.no_grad():
                logits = model(window).logits[0].float()
            nll = torch.nn.functional.cross_entropy(logits[:-1], window[0, 1:], reduction="none")
            for prefix in (int(x) for x in args.prefixes.split(",") if int(x) < L):
                # Token i (i >= prefix) is predicted by the logits of position i - 1.
                mean = nll[prefix - 1:].double().mean().item()
                rows.append({"length": L, "window": w, "prefix": prefix, "tokens": L - prefix, "perplexity": math.exp(mean)})
                print(json.dumps(rows[-1]), flush=True)
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "text_tokens": len(ids),
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python3"] + sys.argv), **git_state()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
