# transformers' own logits warpers on fixed logits: python make.py > warpers.json
# (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, applied in the order generate() applies them).
import json, sys
import numpy as np, torch, transformers
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

rs = np.random.RandomState(7)
settings = [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.9), (0.6, 20, 0.95), (1.3, 3, 0.5), (0.8, 0, 0.3)]
cases = []
for t, k, p in settings:
    for _ in range(3):
        logits = (rs.randn(64) * 3).astype(np.float32)
        s = torch.tensor(logits)[None]
        s = TemperatureLogitsWarper(t)(None, s)
        if k: s = TopKLogitsWarper(k)(None, s)
        if p < 1: s = TopPLogitsWarper(p)(None, s)
        probs = torch.softmax(s, -1)[0].double().numpy()
        # No cumulative mass within 1e-4 of top-p's cut, so float32 and float64 agree on it.
        if p < 1:
            q = np.sort(torch.softmax(TopKLogitsWarper(k)(None, torch.tensor(logits)[None] / t) if k else torch.tensor(logits)[None] / t, -1)[0].double().numpy())
            assert np.min(np.abs(np.cumsum(q) - (1 - p))) > 1e-4
        us = rs.rand(5).tolist()
        # Inverse CDF in vocabulary order over the warped distribution.
        picks = [int(np.searchsorted(np.cumsum(probs), u, side="right")) for u in us]
        cases.append({"temperature": t, "topK": k, "topP": p, "logits": logits.tolist(), "probs": probs.tolist(), "u": us, "picks": picks})
json.dump({"note": f"made by test/fidelity/sampling/make.py outside the project with transformers {transformers.__version__}, torch {torch.__version__} (CPU): the probabilities after transformers' temperature, top-k and top-p warpers, and the token each u picks by inverse CDF in vocabulary order", "cases": cases}, sys.stdout)
