"""Torch's side of the attention benchmark, on the shapes `quest bench-attention` times:
dense decode attention with scaled_dot_product_attention, and Quest written as torch ops
(page estimate from min/max, topk, gather, sdpa). Run on the GPU machine:

    python3 tools/bench-torch.py --lengths 4096,32768 --budgets 2048 --out torch.json
then `quest bench-attention ... --torch torch.json` prints both side by side.

With --prefill SPECS.json (a list of {"name", "spec"}: the presets' shapes as
src/model/presets.ts states them), it times transformers' prefill of each shape instead: a
random-weight model in fp16 with attn_implementation="sdpa", the last token's logits only,
and one layer's causal SDPA alone; `quest bench-latency --torch` reads that file.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def median_us(fn, args, flush, repeats):
    """Median microseconds of fn(*args), each call started with L2 holding none of its bytes:
    `flush` (twice the L2) is read just before, as the attention benchmark does."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    warm = time.perf_counter() + 0.02  # 20 ms of calls first, as the attention benchmark does
    while time.perf_counter() < warm:
        fn(*args)
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        flush.sum()
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    times.sort()
    return times[len(times) // 2]


def median_ms(fn, repeats):
    """Median milliseconds of fn() over `repeats` calls after one untimed call."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def hf_config(spec):
    """The transformers config of a preset (ArchSpec field names, src/model/config.ts)."""
    import transformers

    rope = spec["rope"]
    params = {"rope_theta": rope["theta"], "rope_type": rope["type"]}
    if rope["type"] == "llama3":
        params.update(factor=rope["factor"], low_freq_factor=rope["lowFreqFactor"], high_freq_factor=rope["highFreqFactor"],
                      original_max_position_embeddings=rope["originalMaxPositions"])
    elif rope["type"] == "linear":
        params.update(factor=rope["factor"])
    kw = dict(vocab_size=spec["vocabSize"], hidden_size=spec["hiddenSize"], num_hidden_layers=spec["numLayers"],
              num_attention_heads=spec["numHeads"], num_key_value_heads=spec["numKvHeads"], head_dim=spec["headDim"],
              intermediate_size=spec["intermediateSize"], rms_norm_eps=spec["rmsNormEps"],
              max_position_embeddings=spec["maxPositions"], tie_word_embeddings=spec["tieEmbeddings"], rope_parameters=params)
    if spec["arch"] == "llama":
        kw.update(attention_bias=spec["attentionBias"], mlp_bias=spec["mlpBias"])
    return transformers.AutoConfig.for_model(spec["arch"], **kw)


def bench_prefill(specs, lengths, repeats):
    """transformers' prefill of each shape at each length, and one layer's causal SDPA."""
    import transformers

    rows = []
    for item in specs:
        name, spec = item["name"], item["spec"]
        torch.manual_seed(0)
        prev = torch.get_default_dtype()
        torch.set_default_dtype(torch.float16)
        with torch.device("cuda"):
            model = transformers.AutoModelForCausalLM.from_config(hf_config(spec), attn_implementation="sdpa")
        torch.set_default_dtype(prev)
        model.eval()
        H, KVH, D = spec["numHeads"], spec["numKvHeads"], spec["headDim"]
        for L in lengths:
            if L > spec["maxPositions"]:
                continue
            ids = torch.randint(0, spec["vocabSize"], (1, L), device="cuda")

            def prefill():
                with torch.inference_mode():
                    model(input_ids=ids, use_cache=True, logits_to_keep=1)

            q = torch.randn(1, H, L, D, device="cuda", dtype=torch.float16)
            k = torch.randn(1, KVH, L, D, device="cuda", dtype=torch.float16)
            v = torch.randn(1, KVH, L, D, device="cuda", dtype=torch.float16)

            def sdpa():
                F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != KVH)

            row = {"model": name, "length": L, "prefillMs": median_ms(prefill, repeats), "sdpaMs": median_ms(sdpa, max(repeats, 5))}
            rows.append(row)
            print(json.dumps(row), flush=True)
            del q, k, v, ids
            torch.cuda.empty_cache()
        del model
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--page-size", type=int, default=16)
    ap.add_argument("--lengths", default="4096,8192,16384,32768,65536,131072")
    ap.add_argument("--budgets", default="2048")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefill", help="JSON list of {name, spec}: time transformers' prefill of these shapes at --lengths")
    a = ap.parse_args()
    if a.prefill:
        rows = bench_prefill(json.load(open(a.prefill)), [int(x) for x in a.lengths.split(",")], a.repeats)
        import transformers
        out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "transformers": transformers.__version__,
               "kind": "prefill", "rows": rows}
        json.dump(out, open(a.out, "w"), indent=1)
        return
    H, KVH, D, P = a.heads, a.kv_heads, a.head_dim, a.page_size
    G = H // KVH
    dev = torch.device("cuda")
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    flush = torch.ones(2 * l2 // 4, device=dev, dtype=torch.int32)
    q = torch.randn(1, H, 1, D, device=dev, dtype=torch.float16)
    rows = []
    for L in [int(x) for x in a.lengths.split(",")]:
        k = torch.rand(1, KVH, L, D, device=dev, dtype=torch.float16) * 2 - 1
        v = torch.rand(1, KVH, L, D, device=dev, dtype=torch.float16) * 2 - 1
        full = (L // P) * P
        kp = k[:, :, :full].view(1, KVH, full // P, P, D)
        cache = (k, v, kp.amin(3), kp.amax(3))

        def dense(k, v, kmin, kmax):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=G > 1)

        rows.append({"length": L, "policy": "dense", "budget": 0, "us": median_us(dense, cache, flush, a.repeats)})
        current = (L - 1) // P
        for B in [int(x) for x in a.budgets.split(",")]:
            sel = min(B // P - 1, current)

            def quest(k, v, kmin, kmax):
                qg = q.view(1, KVH, G, 1, D)
                est = torch.maximum(qg * kmax[:, :, None, :current], qg * kmin[:, :, None, :current]).sum(-1).sum(2)
                top = est.topk(sel, dim=-1).indices  # [1, KVH, sel]
                tok = (top[..., None] * P + torch.arange(P, device=dev)).flatten(-2)
                tok = torch.cat([tok, torch.arange(current * P, L, device=dev).expand(1, KVH, -1)], -1)
                idx = tok[..., None].expand(-1, -1, -1, D)
                ks, vs = k.gather(2, idx), v.gather(2, idx)
                return F.scaled_dot_product_attention(q, ks, vs, enable_gqa=G > 1)

            rows.append({"length": L, "policy": "quest", "budget": B, "us": median_us(quest, cache, flush, a.repeats)})
        del cache, k, v, kp
        torch.cuda.empty_cache()
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "shape": {"heads": H, "kvHeads": KVH, "headDim": D, "pageSize": P}, "rows": rows}
    json.dump(out, open(a.out, "w"), indent=1)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
