"""Train the project's own small long-context model (a Llama with GQA) on the GPU machine.

    tools/make-training-data.sh            # on a CPU machine: quest tasks generate -> .gpu/train-data.tar.xz
    python3 tools/train-model.py --data .data/train --tokenizer models/quest-tiny \
        --out models/quest-tiny --minutes 6.5

Data: the project's passkey and RULER needle tasks at 512 to 32768 tokens (seeds 1000+,
disjoint from evaluation's), and plain language modelling on the King James Bible (the books
before Hebrews; Hebrews to Revelation are held out); round 8 (docs/training.md) adds RULER's
other synthetic tasks (`tools/make-training-data.sh ruler`, gpu-run.sh's train-ruler step).
Each step takes one length bucket; the longest bucket allowed grows with time (a length
curriculum). The answer tokens of a task sample carry weight 1, its other tokens a light
language-modelling weight; plain text carries weight 1 everywhere. Tokenization matches
`quest eval`: the context is encoded with the tokenizer's BOS template, the question and the
answer without. Without a GPU it runs on the CPU in fp32 (a smoke test of the pipeline).
"""
import argparse
import glob
import json
import math
import os
import random
import re
import shutil
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig

BOS, EOS, PAD = 0, 1, 2
CONTEXT_WEIGHT = 0.1       # language-modelling weight of a task sample's non-answer tokens
# Share of each batch that is plain text. The first run used 0.2: a hundred passes over the
# 1M-token text memorised it (held-out perplexity 11,256); 0.05 is a quarter of that.
LM_SHARE = 0.05
TOKENS_PER_STEP = 131072
# A sample of bucket L has a prompt of up to L tokens; its answer and EOS follow.
ANSWER_SLACK = 32
# Rows of the separate plain-text batch (--lm-rows): the held-out perplexity's window.
LM_ROW = 2048
# Positions the model is trained on: the longest bucket plus its answers (and then some).
MAX_POSITIONS = 32768 + 256
# (share of the time budget, longest bucket allowed from then on)
CURRICULUM = [(0.0, 2048), (0.15, 4096), (0.3, 8192), (0.5, 16384), (0.7, 32768)]


# Tasks whose generator shuffles every sample of a call alike (make-training-data.sh's parts).
WHOLE_PARTS = {"cwe", "fwe"}


def first_at(context, answer):
    """Where an answer first appears as a whole word in the sample's own text: vt and cwe put a
    solved example first, which repeats the context's opening, so their own text starts at the repeat."""
    start = max(context.rfind(context[:40]), 0)
    m = re.compile(r"(?<![\w-])" + re.escape(answer) + r"(?![\w-])").search(context, start)
    return m.start() if m else len(context)


def target_text(sample):
    # passkey answers "The pass key is" with " 12345."; RULER's several answers with " a b c.":
    # vt's names in the order they first appear in its own text (the chain's; the metric ignores
    # order, and an order read off the text is learnable where the generator's is not), ", " and
    # " and " would take its five names past its 30 generated tokens; cwe's numbered
    # " 1. a 2. b ..." as its solved example lists them, in first-appearance order (the ten are
    # equally frequent); fwe's three in the generator's order, by frequency, the count it asks.
    answers = sample["answers"]
    if sample["task"] != "fwe":
        answers = sorted(answers, key=lambda a: first_at(sample["context"], a))
    if sample["task"] == "cwe":
        answers = [f"{i + 1}. {a}" for i, a in enumerate(answers)]
    return " " + " ".join(answers) + "."


def autocast(device):
    # bf16 on the GPU; a CPU run (the smoke test of the pipeline) stays in fp32
    return torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")


def row_width(length):
    """Tokens a training row of a bucket holds: the bucket's length, then room for the answer and EOS."""
    return length + ANSWER_SLACK + 1


def load_tasks(tok, data_dir, holdout):
    buckets, held = {}, []
    for path in sorted(glob.glob(os.path.join(data_dir, "*.jsonl"))):
        length = int(re.search(r"-(\d+)\.jsonl$", path).group(1))
        samples = [json.loads(line) for line in open(path)]
        if samples and samples[0]["task"] in WHOLE_PARTS:
            missing = next((i for i, s in enumerate(samples) if not isinstance(s.get("id"), str)), None)
            if missing is not None:
                raise SystemExit(f"{path}: line {missing + 1} has no \"id\" (quest tasks generate writes TASK-L<length>-<index>), "
                                 f"which marks where a part of {samples[0]['task']} begins")
        ctx = tok.encode_batch([s["context"] for s in samples], add_special_tokens=True)
        qs = tok.encode_batch([s["question"] for s in samples], add_special_tokens=False)
        ts = tok.encode_batch([target_text(s) for s in samples], add_special_tokens=False)
        n_hold = max(1, int(len(samples) * holdout))
        # cwe's and fwe's samples of one part (one seed, ids ending -0, -1, ...) share where the
        # frequent words sit: a held-out part is held out whole, so that training never saw it.
        if samples[0]["task"] in WHOLE_PARTS:
            whole = n_hold
            while whole < len(samples) and not samples[whole]["id"].endswith("-0"):
                whole += 1
            n_hold = whole if whole < len(samples) else n_hold  # a file of one part keeps rows to train on
        # a row holds row_width(length) tokens; a longer sample loses its answer's end
        cut = sum(len(c.ids) + len(q.ids) + len(t.ids) + 1 > row_width(length) for c, q, t in zip(ctx, qs, ts))
        for i, (c, q, t) in enumerate(zip(ctx, qs, ts)):
            ids = c.ids + q.ids + t.ids + [EOS]
            answer_from = len(c.ids) + len(q.ids)
            item = (ids, answer_from, samples[i]["task"], length)
            (held if i < n_hold else buckets.setdefault(length, [])).append(item)
        print(f"{os.path.basename(path)}: {len(samples)} samples, {len(ctx[0].ids) + len(qs[0].ids)} prompt tokens, answers up to "
              f"{max(len(t.ids) for t in ts) + 1} tokens with EOS" + (f", {cut} cut short" if cut else ""), flush=True)
    return buckets, held


_PER_TASK = {}


def _per_task(length, pool):
    if length not in _PER_TASK:
        groups = {}
        for item in pool:
            groups.setdefault(item[2], []).append(item)
        _PER_TASK[length] = groups
    return _PER_TASK[length]


def draw_task(per_task, rng, focus):
    """A task of the bucket: each focus task (of the bucket) with its share of the rows, the others equally."""
    names = sorted(per_task)
    present = [(t, share) for t, share in focus.items() if t in per_task]
    if present and len(names) == 1:
        return names[0]
    if present:  # no draw otherwise: recipes without --focus keep their random stream
        r, cum = rng.random(), 0.0
        for task, share in present:
            cum += share
            if r < cum:
                return task
    others = [t for t in names if t not in focus] or names
    return rng.choice(others)


def batch_for(length, buckets, lm_ids, rng, device, by_task, focus, lm_share, context_weight, tokens_per_step):
    """context_weight: a task's language-modelling weight of its samples' non-answer tokens."""
    rows = max(1, tokens_per_step // length)
    n_lm = int(round(rows * lm_share))
    pool = buckets[length]
    per_task = _per_task(length, pool) if by_task else None
    width = row_width(length)
    ids = torch.full((rows, width), PAD, dtype=torch.long)
    w = torch.zeros((rows, width))
    for r in range(rows):
        if r < n_lm:
            start = rng.randrange(0, len(lm_ids) - length - 2)
            seq = [BOS] + lm_ids[start:start + length]
            ids[r, :len(seq)] = torch.tensor(seq)
            w[r, 1:len(seq)] = 1.0
        else:
            if per_task:  # every task of the bucket equally often, however many samples it has
                seq, answer_from, task, _ = rng.choice(per_task[draw_task(per_task, rng, focus)])
            else:
                seq, answer_from, task, _ = pool[rng.randrange(len(pool))]
            seq = seq[:width]
            ids[r, :len(seq)] = torch.tensor(seq)
            w[r, 1:len(seq)] = context_weight(task)
            w[r, answer_from:len(seq)] = 1.0
    return ids.to(device), w.to(device), n_lm


def lm_batch(lm_ids, rng, rows, device):
    ids = torch.empty((rows, LM_ROW + 1), dtype=torch.long)
    for r in range(rows):
        start = rng.randrange(0, len(lm_ids) - LM_ROW)
        ids[r] = torch.tensor([BOS] + lm_ids[start:start + LM_ROW])
    return ids.to(device)


def plain_loss(model, ids):
    logits = model(input_ids=ids[:, :-1], use_cache=False).logits.float()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))


def distill_loss(model, teacher, ids):
    """KL(teacher || model) per token on plain text: the teacher's whole distribution is the
    target, not the text's next token, so a model that has memorised the text unlearns it
    toward what the teacher predicts (learning without forgetting, Li & Hoiem 2016)."""
    with torch.no_grad():
        target = F.log_softmax(teacher(input_ids=ids[:, :-1], use_cache=False).logits.float(), -1)
    logp = F.log_softmax(model(input_ids=ids[:, :-1], use_cache=False).logits.float(), -1)
    return F.kl_div(logp.reshape(-1, logp.size(-1)), target.reshape(-1, target.size(-1)), log_target=True, reduction="batchmean")


def weighted_loss(model, ids, w, n_lm):
    """The weighted loss, and the plain-text rows' own loss (for the log)."""
    logits = model(input_ids=ids[:, :-1], use_cache=False).logits.float()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none").view(ids.size(0), -1)
    wt = w[:, 1:]
    lm = (ce[:n_lm] * wt[:n_lm]).sum() / wt[:n_lm].sum().clamp(min=1)
    return (ce * wt).sum() / wt.sum(), lm


@torch.no_grad()
def answer_accuracy(model, held, device):
    """Teacher-forced: does the model predict every answer token of a held-out sample? And the
    share of answer tokens it predicts (a long answer can be mostly right and still wrong)."""
    model.eval()
    by, tokens = {}, {}
    for ids, answer_from, task, length in held:
        x = torch.tensor([ids], device=device)
        with autocast(device):
            logits = model(input_ids=x[:, :-1], use_cache=False).logits
        pred = logits[0, answer_from - 1:].argmax(-1)
        hit = pred == x[0, answer_from:]
        by.setdefault((task, length), []).append(bool(hit.all()))
        tokens.setdefault((task, length), []).append(hit.float().mean().item())
    model.train()
    mean = lambda v: round(sum(v) / len(v), 4)
    return {f"{t}@{L}": mean(v) for (t, L), v in sorted(by.items())}, {f"{t}@{L}": mean(v) for (t, L), v in sorted(tokens.items())}


@torch.no_grad()
def perplexity(model, tok, text, device, window=2048):
    model.eval()
    ids = tok.encode(text, add_special_tokens=False).ids
    nll, count = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        chunk = torch.tensor([[BOS] + ids[s:s + window]], device=device)
        with autocast(device):
            logits = model(input_ids=chunk[:, :-1], use_cache=False).logits.float()
        nll += F.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
        count += chunk.size(1) - 1
    model.train()
    return math.exp(nll / count), count


def grow(model, layers, device):
    """The init's model with layers added on top, their attention and MLP outputs zero: each new
    layer passes the residual stream through unchanged until training moves it."""
    n = model.config.num_hidden_layers
    if layers < n:
        raise SystemExit(f"--layers {layers}: --init's model has {n} already")
    model.config.num_hidden_layers = layers
    grown = AutoModelForCausalLM.from_config(model.config, attn_implementation="sdpa").to(device)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("model.layers.") and int(k.split(".")[2]) >= n for k in missing), (missing, unexpected)
    for layer in grown.model.layers[n:]:
        torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
        torch.nn.init.zeros_(layer.mlp.down_proj.weight)
    return grown


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--heldout-text", default="datasets/text/kjv-heldout.txt")
    ap.add_argument("--minutes", type=float, default=6.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this model folder (a fine-tune) instead of random weights")
    ap.add_argument("--by-task", action="store_true", help="draw tasks equally often within a length bucket")
    ap.add_argument("--no-curriculum", action="store_true", help="every length from the start")
    ap.add_argument("--curriculum", help="share:longest,... (e.g. 0:4096,0.5:32768) in place of the default")
    ap.add_argument("--lm-share", type=float, default=LM_SHARE, help="share of each batch that is plain text")
    # A long bucket has too few rows for a share of them to be plain text (4 rows at 32K: 5%
    # rounds to none), and fine-tunes that ran mostly long lost the language model (rounds 4-6).
    ap.add_argument("--lm-rows", type=int, default=0, help="also, every step, this many plain-text rows of 2048 tokens, their loss added")
    ap.add_argument("--teacher", help="with --lm-rows: the plain-text rows' loss is the KL divergence from this model's predictions")
    ap.add_argument("--context-weight", type=float, default=CONTEXT_WEIGHT, help="language-modelling weight of a task sample's non-answer tokens")
    # vt's assignments are its chain's hops and cwe's and fwe's lists the counts they ask for,
    # where another task's haystack is text the model would only memorise.
    ap.add_argument("--task-context-weight", help="TASK=WEIGHT[,TASK=WEIGHT...]: --context-weight for these tasks' samples instead")
    ap.add_argument("--focus", help="TASK=SHARE[,TASK=SHARE...]: each task takes its SHARE of each batch's task rows, the others "
                    "the rest equally (implies --by-task)")
    ap.add_argument("--tokens-per-step", type=int, default=TOKENS_PER_STEP, help="tokens of a step's task and plain-text rows")
    ap.add_argument("--hidden", type=int, help="width of a model from scratch (default 256): heads of 64, half as many KV heads (all, for an odd count), SwiGLU 3x as wide")
    ap.add_argument("--layers", type=int, help="layers of a model from scratch (default 6); with --init, layers added on top of the init's "
                    "whose output projections start at zero, so the grown model starts as the init")
    args = ap.parse_args()
    if args.teacher and not args.lm_rows:
        ap.error("--teacher distils on the plain-text rows: give --lm-rows too")
    if args.init and args.hidden:
        ap.error("--hidden: a fine-tune takes its width from --init's model")
    for flag, v in (("--hidden", args.hidden), ("--layers", args.layers), ("--tokens-per-step", args.tokens_per_step)):
        if v is not None and v <= 0:
            ap.error(f"{flag} {v}: must be positive")
    if args.hidden and args.hidden % 64:
        ap.error(f"--hidden {args.hidden}: heads are 64 wide, so the width must be a multiple of 64")
    curriculum = CURRICULUM
    if args.curriculum:
        try:
            curriculum = [(float(f), int(L)) for f, L in (c.split(":") for c in args.curriculum.split(","))]
        except ValueError:
            ap.error(f"--curriculum {args.curriculum}: expected SHARE:LENGTH,... (a share of the time from 0 to 1, a length in tokens)")
        shares = [f for f, _ in curriculum]
        if shares[0] != 0 or shares != sorted(shares) or shares[-1] > 1 or any(L <= 0 for _, L in curriculum):
            ap.error(f"--curriculum {args.curriculum}: the shares must start at 0 and rise to at most 1, the lengths be positive")
    # Every file the run reads, before the minutes of tokenizing and training.
    needed = [os.path.join(args.tokenizer, n) for n in ("tokenizer.json", "tokenizer_config.json")]
    needed += [os.path.join(args.data, "lm-kjv-train.txt"), args.heldout_text]
    needed += [os.path.join(m, "config.json") for m in (args.init, args.teacher) if m]
    if missing := [f for f in needed if not os.path.isfile(f)]:
        ap.error(f"missing: {', '.join(missing)}")
    data_files = sorted(glob.glob(os.path.join(args.data, "*.jsonl")))
    if not data_files:
        ap.error(f"--data {args.data}: no TASK-LENGTH.jsonl files")
    bucket_lengths = sorted({int(m.group(1)) for f in data_files if (m := re.search(r"-(\d+)\.jsonl$", f))})
    if not bucket_lengths or bucket_lengths[0] > curriculum[0][1]:
        ap.error(f"--curriculum: its first length {curriculum[0][1]} is below every bucket of {args.data} ({', '.join(map(str, bucket_lengths))})")
    def task_values(flag, text):
        """TASK=NUMBER[,TASK=NUMBER...] as a dict, each number finite and at least 0."""
        values = {}
        for part in text.split(",") if text else []:
            task, _, value = part.partition("=")
            if task in values:
                ap.error(f"{flag} {text}: {task} is named twice")
            try:
                values[task] = float(value)
            except ValueError:
                ap.error(f"{flag} {part!r}: expected TASK=NUMBER")
            if not math.isfinite(values[task]) or values[task] < 0:
                ap.error(f"{flag} {part!r}: the number must be finite and at least 0")
        return values

    focus = task_values("--focus", args.focus)
    if sum(focus.values()) > 1:
        ap.error(f"--focus {args.focus}: the shares add up to more than 1")
    task_cw = task_values("--task-context-weight", args.task_context_weight)
    # Before the minutes of tokenizing: the tasks as the batches draw them, each file's samples' "task".
    known = set()
    for f in data_files:
        with open(f) as lines:
            first = lines.readline()
        if not first:
            continue
        try:
            known.add(json.loads(first)["task"])
        except (ValueError, KeyError, TypeError):
            ap.error(f"{f}: its first line is not a sample with a \"task\" (quest tasks generate writes them)")
    for flag, named in (("--focus", focus), ("--task-context-weight", task_cw)):
        if unknown := sorted(set(named) - known):
            ap.error(f"{flag}: no task {', '.join(unknown)} in {args.data} (its tasks: {', '.join(sorted(known))})")
    longest = max(length for _, length in curriculum)
    if args.tokens_per_step < longest:
        ap.error(f"--tokens-per-step {args.tokens_per_step}: less than the curriculum's longest rows ({longest} tokens)")
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True

    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    t0 = time.time()
    buckets, held = load_tasks(tok, args.data, holdout=0.03)
    lm_ids = tok.encode(open(os.path.join(args.data, "lm-kjv-train.txt")).read(), add_special_tokens=False).ids
    print(f"tokenized in {time.time() - t0:.0f}s: buckets {sorted(buckets)}, {len(held)} held out, {len(lm_ids)} text tokens", flush=True)

    hidden = args.hidden or 256
    heads = hidden // 64
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=args.layers or 6,
        num_attention_heads=heads, num_key_value_heads=heads // 2 if heads % 2 == 0 else heads, head_dim=64, max_position_embeddings=MAX_POSITIONS,
        rope_theta=1000000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
    )
    # sdpa with no attention mask runs causal flash attention: no L x L mask is built.
    if args.init:
        model = AutoModelForCausalLM.from_pretrained(args.init, dtype=torch.float32, attn_implementation="sdpa").to(device)
        if args.layers:
            model = grow(model, args.layers, device)
    else:
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").to(device)
    teacher = None
    if args.teacher:
        teacher = AutoModelForCausalLM.from_pretrained(args.teacher, dtype=torch.float32, attn_implementation="sdpa").to(device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    budget = args.minutes * 60
    start = time.time()
    step, log = 0, []
    lengths = sorted(buckets)
    while (elapsed := time.time() - start) < budget:
        frac = elapsed / budget
        longest = curriculum[-1][1] if args.no_curriculum else max(L for f, L in curriculum if frac >= f)
        allowed = [L for L in lengths if L <= longest]
        # Half the steps at the longest length allowed so far, the rest spread over shorter ones.
        length = allowed[-1] if rng.random() < 0.5 or len(allowed) == 1 else rng.choice(allowed[:-1])
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, w, n_lm = batch_for(length, buckets, lm_ids, rng, device, args.by_task or bool(focus), focus, args.lm_share,
                                 lambda task: task_cw.get(task, args.context_weight), args.tokens_per_step)
        with autocast(device):
            loss, lm_loss = weighted_loss(model, ids, w, n_lm)
            if args.lm_rows:
                rows = lm_batch(lm_ids, rng, args.lm_rows, device)
                lm_loss = distill_loss(model, teacher, rows) if teacher else plain_loss(model, rows)
                loss = loss + lm_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step == 0 or (step % 50 == 0):
            # With --teacher, lm_loss is the plain-text rows' KL divergence from the teacher.
            entry = {"step": step, "seconds": round(elapsed, 1), "length": length, "lr": lr, "loss": round(loss.item(), 4), "lm_loss": round(lm_loss.item(), 3),
                     "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else None}
            log.append(entry)
            print(json.dumps(entry), flush=True)
        step += 1

    acc, token_acc = answer_accuracy(model, held, device)
    ppl, ppl_tokens = perplexity(model, tok, open(args.heldout_text).read(), device)
    print(json.dumps({"teacher_forced_answer_accuracy": acc, "answer_token_accuracy": token_acc, "heldout_perplexity": ppl}), flush=True)

    model = model.to(torch.bfloat16)
    model.save_pretrained(args.out)
    GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD).save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(args.out, name))
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump({
            "parameters": n_params, "steps": step, "minutes": args.minutes, "lr": args.lr, "seed": args.seed,
            "init": args.init, "by_task": args.by_task, "focus": args.focus, "curriculum_used": not args.no_curriculum,
            "tokens_per_step": args.tokens_per_step, "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size, "lm_share": args.lm_share, "lm_rows": args.lm_rows, "teacher": args.teacher, "context_weight": args.context_weight, "task_context_weight": args.task_context_weight,
            "curriculum": curriculum, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
            "data_files": sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.data, "*"))),
            "teacher_forced_answer_accuracy": acc, "answer_token_accuracy": token_acc,
            "heldout_perplexity": {"text": args.heldout_text, "tokens": ppl_tokens, "window": 2048, "value": ppl},
            "log": log,
        }, f, indent=1)
    print(f"saved {args.out}: {n_params} parameters, {step} steps", flush=True)


if __name__ == "__main__":
    main()
