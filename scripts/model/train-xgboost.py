"""Trains fraud version 2 with XGBoost: the same generated data, rows, split and encoding as the
project's GBDT (version 1), so `champion` can move between the two and be compared on equal terms.
The data comes from the project's own generator (scripts/model/fraud-features-csv.ts writes the
encoded columns); XGBoost is Debian's python3-xgboost (scripts/ensure-python-ml.sh installs it).
Writes models/fraud/2/xgboost.json and its manifest.json: the same record encoding as version 1
(records are the same transactions), thresholds from the held-out scores as version 1 sets them.
Usage: /usr/bin/python3 scripts/model/train-xgboost.py   (from the repository root; Node on PATH)"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "models", "fraud", "2")
V1 = os.path.join(ROOT, "models", "fraud", "1", "manifest.json")
# As version 1: approve below the held-out 90th percentile, review below the 99th.
APPROVE_QUANTILE, REVIEW_QUANTILE = 0.9, 0.99
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 20,
    "lambda": 20,
    "seed": 42,
    # One thread: the trees do not depend on how the work was split.
    "nthread": 1,
}
ROUNDS = 300


def auc(labels, scores):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    # Average ranks for ties, as the Mann-Whitney statistic wants.
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "fraud.csv")
        subprocess.run(["node", os.path.join(ROOT, "scripts", "model", "fraud-features-csv.ts"), csv], check=True)
        df = pd.read_csv(csv)
    features = [c for c in df.columns if c not in ("is_fraud", "split")]
    train, holdout = df[df.split == "train"], df[df.split == "holdout"]
    dtrain = xgb.DMatrix(train[features].to_numpy(np.float32), train.is_fraud, feature_names=features)
    dhold = xgb.DMatrix(holdout[features].to_numpy(np.float32), holdout.is_fraud, feature_names=features)
    booster = xgb.train(PARAMS, dtrain, ROUNDS)
    p = booster.predict(dhold)
    y = holdout.is_fraud.to_numpy()
    s = np.sort(p)
    q = lambda x: float(s[min(len(s) - 1, int(x * len(s)))])
    approve, review = float(f"{q(APPROVE_QUANTILE):.2g}"), float(f"{q(REVIEW_QUANTILE):.2g}")

    os.makedirs(OUT, exist_ok=True)
    model_file = os.path.join(OUT, "xgboost.json")
    booster.save_model(model_file)
    data = open(model_file, "rb").read()
    v1 = json.load(open(V1))
    eps = 1e-15
    manifest = {
        "name": "fraud",
        "version": f"fraud-xgboost-1.0.0+{hashlib.sha256(data).hexdigest()[:8]}",
        "description": "XGBoost (binary:logistic) on the synthetic card transactions of fraud-data.md: the same rows, "
        "split and record encoding as version 1, trained by scripts/model/train-xgboost.py. Thresholds from the "
        "held-out scores as version 1 sets them: approve below the 90th percentile, review below the 99th.",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        # Version 1's record encoding, into the booster's one input: records are the same transactions.
        "input": {**v1["input"], "name": "input__0"},
        "output": {"name": "probability", "probability_column": 0, "field": v1["output"]["field"]},
        "thresholds": {"approve": approve, "review": review},
        "metrics": {
            "rows": int(len(y)),
            "roc_auc": round(auc(y, p.astype(np.float64)), 6),
            "log_loss": round(float(-np.mean(y * np.log(np.clip(p, eps, 1)) + (1 - y) * np.log(np.clip(1 - p, eps, 1)))), 6),
            "fraud_rate": round(float(y.mean()), 6),
        },
        "data": v1["data"],
        "trainer": {"algorithm": "xgboost", "xgboost": xgb.__version__, "rounds": ROUNDS, **{k: v for k, v in PARAMS.items() if k != "eval_metric"}},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"models/fraud/2: held-out AUC {manifest['metrics']['roc_auc']} (version 1: {v1['metrics']['roc_auc']}), thresholds {approve} / {review}", file=sys.stderr)


if __name__ == "__main__":
    main()
