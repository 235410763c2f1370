"""Which score finds flipped labels best: ours, the published package, or cleanlab?

    python benchmarks/bench_label_quality.py [--seeds 2] [--datasets pbmc,panel,...] [--out report.md]
    python benchmarks/bench_label_quality.py --smoke      # tiny, checks that the script runs

On every dataset we can build offline, flip labels -- *uniformly* (10/20/30/40 % of cells to
a random other class) and *systematically* (20 % and 40 % of one class relabelled as its most
similar class, the confusion an annotator makes) -- over several seeds, and rank cells by each
method's score (higher = label more likely correct).  Reports AUROC and AUPRC of finding the
flipped cells for:

* ``published``: the PyPI ``Annotatability`` package, confidence of its training dynamics (the
  paper's recipe; 150 epochs on pbmc68k_reduced as in its PBMC notebook, 100 elsewhere);
* ``cleanlab+LR`` / ``cleanlab+MLP``: ``cleanlab.rank.get_label_quality_scores`` on 5-fold
  cross-validated probabilities of a logistic regression / a one-hidden-layer MLP (scikit-learn,
  standardised features);
* ``ours:<column>``: each score of ``napari_annotatability.core.score`` at its defaults
  (confidence, AUM, correctness, and ``annot_label_quality`` when the pipeline writes it).

Datasets: pbmc68k_reduced (700 cells x 765 scaled genes, 10 confusable blood types), and
synthetic data with known truth: a transcriptome (4000 x 1000, log-normalised-like), a
9-marker protein panel (5000 x 9), class imbalance (a 1:2:4:8:16 ladder) and confusable
classes (centres 1.2 s.d. apart).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

UNIFORM_RATES = (0.1, 0.2, 0.3, 0.4)
SYSTEMATIC_RATES = (0.2, 0.4)


# ---------------------------------------------------------------------------------------------
# datasets (each returns an AnnData with a clean categorical obs['label'])
def _pbmc():
    from bench_training import _pbmc as pbmc  # bulk_labels as obs['label'], as in the training benchmark

    return pbmc()


def _synthetic(n, g, k, **kw):
    from napari_annotatability.core import make_synthetic

    def make():
        adata = make_synthetic(n, g, k, mislabel_fraction=0.0, **kw)
        adata.obs["label"] = adata.obs["true_label"].astype("category")
        return adata

    return make


def _imbalanced(n=6000, g=300, seed=14):
    from napari_annotatability.core import make_synthetic

    def make():
        adata = make_synthetic(n, g, 5, mislabel_fraction=0.0, separation=2.0, seed=seed)
        codes = adata.obs["true_label"].astype("category").cat.codes.to_numpy()
        rng = np.random.default_rng(seed)
        keep = np.zeros(adata.n_obs, dtype=bool)
        for c, share in enumerate((1, 2, 4, 8, 16)):
            rows = np.flatnonzero(codes == c)
            keep[rng.choice(rows, max(20, int(len(rows) * share / 16)), replace=False)] = True
        adata = adata[keep].copy()
        adata.obs["label"] = adata.obs["true_label"].astype("category")
        return adata

    return make


DATASETS = {
    "pbmc": ("pbmc68k_reduced (700 × 765)", _pbmc, 150),
    "transcriptome": ("transcriptome (4000 × 1000)", _synthetic(4000, 1000, 8, separation=2.0, seed=11), 100),
    "panel": ("9-marker panel (5000 × 9)", _synthetic(5000, 9, 6, latent_dim=6, separation=3.0, seed=12), 100),
    "imbalanced": ("imbalanced 1:2:4:8:16 (~2400 × 300)", _imbalanced(), 100),
    "confusable": ("confusable classes (4000 × 200)", _synthetic(4000, 200, 6, separation=1.2, seed=13), 100),
}


# ---------------------------------------------------------------------------------------------
# noise
def flip(codes: np.ndarray, n_classes: int, kind: str, rate: float, seed: int, X=None):
    """``(noisy codes, flipped mask)``: uniform flips, or one class relabelled as its nearest."""
    from napari_annotatability.core import flip_labels

    if kind == "uniform":
        return flip_labels(codes, n_classes, rate, seed)
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes, minlength=n_classes)
    src = int(np.argmax(counts))
    dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    centres = np.stack([dense[codes == c].mean(axis=0) for c in range(n_classes)])
    dist = np.linalg.norm(centres - centres[src], axis=1)
    dist[src] = np.inf
    dst = int(np.argmin(dist))
    rows = np.flatnonzero(codes == src)
    picked = rng.choice(rows, int(round(rate * rows.size)), replace=False)
    noisy = codes.copy()
    noisy[picked] = dst
    flipped = np.zeros(codes.size, dtype=bool)
    flipped[picked] = True
    return noisy, flipped


# ---------------------------------------------------------------------------------------------
# methods: each returns {name: score}, higher = label more likely correct
def published(adata, key, epochs, seed):
    from bench_training import _run_published  # the same runner as the training benchmark

    _, conf, _ = _run_published(adata, key, epochs, seed)
    return {"published": np.asarray(conf, dtype=float)}


def _cv_probs(model, X, y, seed):
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    folds = min(5, int(np.bincount(y).min())) if np.bincount(y).min() >= 2 else 2
    cv = StratifiedKFold(max(2, folds), shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_predict(make_pipeline(StandardScaler(), model), X, y, cv=cv, method="predict_proba")


def cleanlab_lr(adata, y, seed):
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression

    probs = _cv_probs(LogisticRegression(max_iter=1000), adata.X, y, seed)
    return {"cleanlab+LR": get_label_quality_scores(y, probs)}


def cleanlab_mlp(adata, y, seed):
    from cleanlab.rank import get_label_quality_scores
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(128,), max_iter=200, early_stopping=True, random_state=seed)
    probs = _cv_probs(model, adata.X, y, seed)
    return {"cleanlab+MLP": get_label_quality_scores(y, probs)}


def ours(adata, key, seed):
    from napari_annotatability import core
    from napari_annotatability.core import keys

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        core.score(adata, key, seed=seed, genes=False)
    out = {"ours:confidence": adata.obs[keys.CONFIDENCE].to_numpy(),
           "ours:AUM": adata.obs[keys.AUM].to_numpy(),
           "ours:correctness": adata.obs[keys.CORRECTNESS].to_numpy()}
    quality = getattr(keys, "LABEL_QUALITY", None)
    if quality is not None and quality in adata.obs:
        out["ours:label_quality"] = adata.obs[quality].to_numpy()
    return out


# ---------------------------------------------------------------------------------------------
def evaluate(name, make, pub_epochs, seeds, smoke=False):
    from sklearn.metrics import average_precision_score, roc_auc_score

    base = make()
    codes = base.obs["label"].cat.codes.to_numpy().astype(np.int64)
    cats = np.asarray(base.obs["label"].cat.categories)
    rows = []
    settings = [("uniform", r) for r in UNIFORM_RATES] + [("systematic", r) for r in SYSTEMATIC_RATES]
    if smoke:
        settings = [("uniform", 0.2), ("systematic", 0.4)]
    for kind, rate in settings:
        for seed in seeds:
            noisy, flipped = flip(codes, len(cats), kind, rate, seed, X=base.X)
            adata = base.copy()
            adata.obs["noisy"] = pd.Categorical(cats[noisy], categories=cats)
            scores, seconds = {}, {}
            for label, fn, args in (
                ("published", published, ("noisy", pub_epochs, seed)),
                ("cleanlab+LR", cleanlab_lr, (noisy, seed)),
                ("cleanlab+MLP", cleanlab_mlp, (noisy, seed)),
                ("ours", ours, ("noisy", seed)),
            ):
                t = time.perf_counter()
                scores.update(fn(adata.copy(), *args))
                seconds[label] = time.perf_counter() - t
            for method, s in scores.items():
                s = np.nan_to_num(np.asarray(s, dtype=float), nan=0.0)
                rows.append({"dataset": name, "noise": kind, "rate": rate, "seed": seed, "method": method,
                             "auroc": roc_auc_score(flipped, -s), "auprc": average_precision_score(flipped, -s),
                             "seconds": seconds.get(method.split(":")[0], np.nan)})
            print(f"  {name} {kind} {rate:.0%} seed {seed}: " + ", ".join(
                f"{r['method']} {r['auroc']:.3f}" for r in rows[-len(scores):]), flush=True)
    return rows


def report(df: pd.DataFrame) -> str:
    lines = ["## Finding flipped labels: AUROC / AUPRC (mean over rates and seeds)", ""]
    methods = list(dict.fromkeys(df["method"]))
    lines.append("| dataset | noise | " + " | ".join(methods) + " | best competitor | ours:label_quality − best |")
    lines.append("|---|---|" + "---|" * (len(methods) + 2))
    for (dataset, noise), g in df.groupby(["dataset", "noise"], sort=False):
        m = g.groupby("method").agg(auroc=("auroc", "mean"), auprc=("auprc", "mean"))
        cells = [f"{m.loc[k, 'auroc']:.3f} / {m.loc[k, 'auprc']:.3f}" for k in methods]
        comp = [k for k in ("published", "cleanlab+LR", "cleanlab+MLP") if k in m.index]
        best = max(comp, key=lambda k: m.loc[k, "auroc"])
        ours_best = "ours:label_quality" if "ours:label_quality" in m.index else "ours:confidence"
        gap = m.loc[ours_best, "auroc"] - m.loc[best, "auroc"]
        lines.append(f"| {dataset} | {noise} | " + " | ".join(cells) +
                     f" | {best} {m.loc[best, 'auroc']:.3f} | {gap:+.3f} ({ours_best.split(':')[1]}) |")
    lines += ["", "Seconds per run (mean): " + ", ".join(
        f"{k} {v:.1f}" for k, v in df.groupby("method")["seconds"].mean().items() if ":" not in k or k == "ours:confidence"), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="two small datasets, one rate of each kind, one seed")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per noise setting (default 2)")
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated among {', '.join(DATASETS)}")
    ap.add_argument("--out", default=None, help="also write the markdown report to this file")
    ap.add_argument("--csv", default=None, help="also write every row (dataset, noise, rate, seed, method, ...) here")
    args = ap.parse_args(argv)
    try:
        import Annotatability  # noqa: F401
        import cleanlab  # noqa: F401
    except ImportError as err:
        print(f"needs the bench extra: pip install -e '.[bench]' ({err})", file=sys.stderr)
        return 2
    names = args.datasets.split(",")
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        print(f"unknown dataset(s) {', '.join(unknown)}; choose among {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    rows = []
    if args.smoke:
        smoke = {"pbmc": (DATASETS["pbmc"][0], _pbmc, 5),
                 "panel": ("9-marker panel (1000 × 9)", _synthetic(1000, 9, 4, latent_dim=6, separation=3.0, seed=12), 5)}
        for title, make, epochs in smoke.values():
            rows += evaluate(title, make, epochs, [0], smoke=True)
    else:
        for n in names:
            title, make, epochs = DATASETS[n]
            print(f"{title} ...", flush=True)
            rows += evaluate(title, make, epochs, list(range(args.seeds)))
    df = pd.DataFrame(rows)
    text = report(df)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
