"""Torch's side of the attention benchmark, on the shapes `quest bench-attention` times:
dense decode attention with scaled_dot_product_attention, and Quest written as torch ops
(page estimate from min/max, topk, gather, sdpa). Run on the GPU machine:

    python3 tools/bench-torch.py --lengths 4096,32768 --budgets 2048 --out torch.json
then `quest bench-attention ... --torch torch.json` prints both side by side.
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
    a = ap.parse_args()
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
