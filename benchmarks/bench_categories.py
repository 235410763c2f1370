"""Do the categories match the truth?  Our rule and the paper's, from the same runs.

    python benchmarks/bench_categories.py [--seeds 0,1] [--datasets tissue,pbmc,...] [--out report.md]
    python benchmarks/bench_categories.py --dump DIR        # also save every run's per-cell signals
    python benchmarks/bench_categories.py --write-docs      # rewrite the table in docs/method.md
    python benchmarks/bench_categories.py --from-csv rows.csv --write-docs   # the same from a --csv, no training
    python benchmarks/bench_categories.py --smoke           # tiny: checks that the script runs
    python benchmarks/bench_categories.py --from-dump DIR --ambiguous-second 0.05,0.1 --ambiguous-variability 0.2,inf
    python benchmarks/bench_categories.py --from-dump DIR --cutoff-rules   # erroneous cut-off constants, leave one out
    python benchmarks/bench_categories.py --from-dump DIR --mixtures       # transition spots by their share of mixing

``core.score`` runs at its defaults (only ``seed`` varies) on

* ``tissue``: the synthetic section of the demo (``make_synthetic_tissue(seed=0)``: 3 005 spots,
  4 % planted mislabels, a cortex-medulla transition zone).  Reported: % of *clean* spots (neither
  mislabelled nor in the transition zone) called correct and called erroneous, % of planted
  mislabels called erroneous, % of transition spots called ambiguous;
* every real dataset of ``benchmarks/real_data.py`` (``REAL_DATASETS``, ``load(name)``) with 10 %
  of labels flipped uniformly to another class (``core.flip_labels``, seed ``1000 + seed``, so never
  the cells the calibration flips).  Reported: % of unflipped cells called correct and erroneous,
  % of flipped cells called erroneous.  Without ``real_data.py`` two stand-ins run instead
  (pbmc68k_reduced, which ships with scanpy, and a synthetic 9-marker panel), named as such.

Each run's scores are categorised by both rules -- ``calibrated`` (ours, the default) and
``paper`` -- with ``core.categorize``, so the two columns of a row come from the same training.
``--dump DIR`` writes one ``.npz`` per run with every per-cell signal the rules read (label
quality, the out-of-sample probabilities (all, p(label) and the top two), in-sample confidence, variability and
AUM, and the variability of the trajectory's last half), the calibration's cut-offs and the truth
flags, so that the rule's constants can be tuned offline without retraining: ``--from-dump DIR``
recomputes the calibrated rule's figures for every combination of the ``--ambiguous-*`` values.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DOCS = HERE.parent / "docs" / "method.md"
MARKERS = ("<!-- bench_categories:start -->", "<!-- bench_categories:end -->")
RULE_NAMES = {"calibrated": "ours", "paper": "paper"}

#: what each figure should reach: (column, label, comparison, target %)
TISSUE_TARGETS = (
    ("clean_correct", "clean spots correct", ">=", 90.0),
    ("clean_erroneous", "clean spots erroneous", "<", 5.0),
    ("mislabelled_erroneous", "planted mislabels erroneous", ">=", 85.0),
    ("transition_ambiguous", "transition spots ambiguous", ">=", 50.0),
)
REAL_TARGETS = (
    ("clean_correct", "unflipped correct", ">=", 85.0),
    ("clean_erroneous", "unflipped erroneous", "<=", 8.0),
    ("mislabelled_erroneous", "flipped erroneous", ">=", 70.0),
)
#: transition spots with at least this share of the other region's profile are "near-even"
#: mixtures: below it the two profiles stay separable (see the tissue note of the report)
EVEN_MIX = 0.4
FLIP_RATE = 0.1
FLIP_SEED_OFFSET = 1000


# ---------------------------------------------------------------------------------------------
# datasets: name -> (title, loader, kind); loaders return an AnnData with a categorical obs['label']
def _tissue(**kw):
    def make():
        from napari_annotatability.core import make_synthetic_tissue

        return make_synthetic_tissue(seed=0, **kw)  # the demo's section (_napari/_sample.py)

    return make


def _pbmc():
    from bench_training import _pbmc as pbmc  # bulk_labels as obs['label'], as in the other benchmarks

    return pbmc()


def _panel(n=5000):
    def make():
        from napari_annotatability.core import make_synthetic

        adata = make_synthetic(n, 9, 6, latent_dim=6, separation=3.0, mislabel_fraction=0.0, seed=12)
        adata.obs["label"] = adata.obs["true_label"].astype("category")
        return adata

    return make


def datasets() -> tuple[dict, str]:
    """All datasets, and a note on where the real ones come from."""
    out = {"tissue": ("synthetic tissue, the demo's (3005 × 200)", _tissue(), "tissue")}
    try:
        import real_data
    except ImportError:
        note = "benchmarks/real_data.py not found: stand-ins for the real datasets"
        out["pbmc"] = ("pbmc68k_reduced (stand-in)", _pbmc, "real")
        out["panel"] = ("synthetic 9-marker panel (stand-in)", _panel(), "real")
        return out, note
    for name, (title, _loader, _epochs) in real_data.REAL_DATASETS.items():
        out[name] = (title, (lambda n=name: real_data.load(n)), "real")
    return out, "real datasets from benchmarks/real_data.py"


# ---------------------------------------------------------------------------------------------
def _late_std(traj: np.ndarray) -> np.ndarray:
    return traj[:, traj.shape[1] // 2 :].std(axis=1, dtype=np.float64).astype(np.float32)


@contextlib.contextmanager
def _capture_calibration():
    """Record the arguments of the calibration's ``erroneous_cutoff`` call (benchmark-only hook)."""
    from napari_annotatability.core import categories

    seen: dict = {}
    original = categories.erroneous_cutoff

    def recording(flipped_lq, unflipped_lq, unflipped_weight, *args, **kwargs):
        seen.update(flipped=np.asarray(flipped_lq, np.float32), unflipped=np.asarray(unflipped_lq, np.float32),
                    weight=float(unflipped_weight))
        return original(flipped_lq, unflipped_lq, unflipped_weight, *args, **kwargs)

    categories.erroneous_cutoff = recording
    try:
        yield seen
    finally:
        categories.erroneous_cutoff = original


def _pct(mask: np.ndarray, of: np.ndarray) -> float:
    of = np.asarray(of, dtype=bool)
    return float(100.0 * np.asarray(mask, dtype=bool)[of].mean()) if of.any() else float("nan")


def run_one(adata, kind: str, seed: int, dump: Path | None, tag: str, **score_kwargs) -> list[dict]:
    """Score ``adata`` at the defaults, categorise by both rules; one row per rule."""
    from napari_annotatability import core
    from napari_annotatability.core import keys

    adata = adata.copy()
    if kind == "tissue":
        label = "label"
        bad = adata.obs["mislabelled"].to_numpy(bool)
        transition = adata.obs["transition"].to_numpy(bool)
        even = transition & (adata.obs["mix"].to_numpy() >= EVEN_MIX)
    else:
        codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
        cats = np.asarray(adata.obs["label"].cat.categories)
        noisy, bad = core.flip_labels(codes, len(cats), FLIP_RATE, FLIP_SEED_OFFSET + seed)
        adata.obs["noisy"] = pd.Categorical(cats[noisy], categories=cats)
        label = "noisy"
        transition = even = np.zeros(adata.n_obs, dtype=bool)
    clean = ~bad & ~transition
    t = time.perf_counter()
    with warnings.catch_warnings(), _capture_calibration() as calibration:
        warnings.simplefilter("ignore")
        core.score(adata, label, seed=seed, genes=False, **score_kwargs)
    seconds = time.perf_counter() - t
    th = dict(adata.uns[keys.UNS]["thresholds"])
    rows, cats_by_rule = [], {}
    for rule in ("calibrated", "paper"):
        core.categorize(adata, rule=rule)
        cat = adata.obs[keys.CATEGORY].astype(str).to_numpy()
        cats_by_rule[rule] = cat
        rows.append({
            "kind": kind, "seed": seed, "rule": rule, "seconds": seconds,
            "clean_correct": _pct(cat == "correct", clean),
            "clean_ambiguous": _pct(cat == "ambiguous", clean),
            "clean_erroneous": _pct(cat == "erroneous", clean),
            "mislabelled_erroneous": _pct(cat == "erroneous", bad),
            "transition_ambiguous": _pct(cat == "ambiguous", transition),
            "even_ambiguous": _pct(cat == "ambiguous", even),
            "quality_cutoff": th.get("label_quality", np.nan),
            "label_quality_auroc": th.get("label_quality_auroc", np.nan),
        })
    if dump is not None:
        obs = adata.obs
        probs = np.asarray(adata.obsm[keys.OOS_PROBABILITIES], dtype=np.float32)
        y = obs[label].cat.codes.to_numpy()
        order = np.argsort(-probs, axis=1)
        top = np.take_along_axis(probs, order[:, :2], axis=1)
        dump.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            dump / f"{tag}_seed{seed}.npz",
            label_quality=obs[keys.LABEL_QUALITY].to_numpy(np.float32),
            oos_p_label=probs[np.arange(adata.n_obs), y],
            oos_top1=top[:, 0], oos_top2=top[:, 1], oos_top1_class=order[:, 0].astype(np.int16),
            oos_probabilities=probs,
            oos_confidence=obs[keys.OOS_CONFIDENCE].to_numpy(np.float32),
            confidence=obs[keys.CONFIDENCE].to_numpy(np.float32),
            variability=obs[keys.VARIABILITY].to_numpy(np.float32),
            aum=obs[keys.AUM].to_numpy(np.float32),
            # how much the in-sample trajectory still moves once learnt (epochs >= epochs // 2)
            variability_late=_late_std(np.asarray(adata.obsm[keys.TRAJECTORY])),
            label=y.astype(np.int16),
            mislabelled=bad, transition=transition, clean=clean,
            mix=adata.obs["mix"].to_numpy(np.float32) if "mix" in adata.obs else np.zeros(adata.n_obs, np.float32),
            category_calibrated=cats_by_rule["calibrated"].astype("U9"),
            category_paper=cats_by_rule["paper"].astype("U9"),
            thresholds=json.dumps(th, default=float),
            # what the erroneous cut-off was derived from (core.erroneous_cutoff's inputs), to try
            # other cut-off rules offline: --from-dump DIR --cutoff-rules
            **{f"calibration_{k}": np.asarray(v) for k, v in calibration.items()},
        )
    return rows


# ---------------------------------------------------------------------------------------------
def _meets(value: float, op: str, target: float) -> bool:
    return {">=": value >= target, "<": value < target, "<=": value <= target}[op]


def _cell(value: float, op: str, target: float) -> str:
    if value != value:
        return "–"
    return f"{value:.1f}{' ✓' if _meets(value, op, target) else ''}"


def _table(df: pd.DataFrame, targets, first: str) -> list[str]:
    head = " | ".join(f"{label} ({op.replace('>=', '≥').replace('<=', '≤')} {t:g} %)" for _, label, op, t in targets)
    lines = [f"| {first} | seed | {head} | LQ cut-off |", "|---|---|" + "---|" * (len(targets) + 1)]
    for (title, seed), g in df.groupby(["title", "seed"], sort=False):
        ours = g[g["rule"] == "calibrated"].iloc[0]
        paper = g[g["rule"] == "paper"].iloc[0]
        cells = [f"{_cell(ours[c], op, t)} / {_cell(paper[c], op, t)}" for c, _, op, t in targets]
        lines.append(f"| {title} | {seed} | " + " | ".join(cells) + f" | {ours['quality_cutoff']:.3f} |")
    return lines


def report(df: pd.DataFrame, note: str, command: str) -> str:
    real = df[df["kind"] == "real"]
    lines = ["Per cent of cells in each category, **ours (`rule=\"calibrated\"`) / the paper's (`rule=\"paper\"`)**, "
             "both from the same `core.score` run at its defaults (✓: target met). "
             + (command if "`" in command else f"`{command}`")
             + (f"; {note}." if len(real) else "."), ""]
    tissue = df[df["kind"] == "tissue"]
    if len(tissue):
        lines += _table(tissue, TISSUE_TARGETS, "synthetic tissue") + [""]
        lines += ["Clean spots: neither planted mislabels nor in the transition zone. Transition spots hold "
                  "10–50 % of the other region's profile; the near-even ones (≥ "
                  f"{EVEN_MIX:.0%}), ambiguous: " + ", ".join(
                      f"seed {r.seed} {r.even_ambiguous:.1f} % ours / {p.even_ambiguous:.1f} % paper"
                      for r, p in zip(tissue[tissue.rule == "calibrated"].itertuples(),
                                      tissue[tissue.rule == "paper"].itertuples())) + ".", ""]
    if len(real):
        lines += _table(real, REAL_TARGETS, f"{FLIP_RATE:.0%} uniform flips") + [""]
    from napari_annotatability.core import ERRONEOUS_PERCENTILE

    lines.append(f"LQ cut-off: the calibrated label-quality cut-off of that run (the {ERRONEOUS_PERCENTILE:g}th "
                 "percentile of the label quality of the cells flipped by the noise-injection calibration, lowered "
                 "where that level is not precise enough, raised into a gap above the flipped cells; label quality "
                 "is a mean percentile rank in [0, 1]; -inf: no cell called erroneous).")
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS, markers: tuple[str, str] = MARKERS) -> None:
    """Replace the block between the ``markers`` in ``path`` with ``text`` (atomically)."""
    from _docs import write_block

    write_block(path, markers[0][len("<!-- "):-len(":start -->")], text)


def tune(folder: Path, seconds: list[float], variabilities: list[float], key: str = "variability") -> str:
    """Offline: the calibrated rule's figures for other ``ambiguous_*`` constants, from ``--dump`` files."""
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise SystemExit(f"no .npz files in {folder}")
    lines = [f"| dump | AMBIGUOUS_SECOND | AMBIGUOUS_VARIABILITY (on {key}) | clean correct | clean erroneous | "
             "mislabelled erroneous | transition ambiguous |", "|---|---|---|---|---|---|---|"]
    for f in files:
        d = np.load(f)
        th = json.loads(str(d["thresholds"]))
        clean, bad, trans = d["clean"], d["mislabelled"], d["transition"]
        err = d["label_quality"] <= th["label_quality"]
        for a2 in seconds:
            for av in variabilities:
                amb = ~err & ((d["oos_top2"] >= a2) | (d[key] >= av))
                lines.append(f"| {f.stem} | {a2:g} | {av:g} | {_pct(~err & ~amb, clean):.1f} | {_pct(err, clean):.1f} | "
                             f"{_pct(err, bad):.1f} | {_pct(amb, trans):.1f} |")
    return "\n".join(lines)


def _cutoff_figures(d, percentile: float, precision: float, band: float) -> dict:
    """One dump's category figures with the erroneous cut-off re-derived by these constants."""
    from napari_annotatability.core import erroneous_cutoff
    from napari_annotatability.core.rules import ambiguous_cutoff

    cut, _ = erroneous_cutoff(d["calibration_flipped"], d["calibration_unflipped"], float(d["calibration_weight"]),
                              percentile, precision, band)
    err = d["label_quality"] <= cut
    top2 = d["oos_top2"]
    amb = ~err & (top2 >= ambiguous_cutoff(top2))
    clean, bad = d["clean"], d["mislabelled"]
    return {"clean_correct": _pct(~err & ~amb, clean), "clean_erroneous": _pct(err, clean),
            "mislabelled_erroneous": _pct(err, bad)}


def _met(fig: dict, targets) -> int:
    return sum(int(_meets(fig[col], op, target)) for col, _label, op, target in targets if col in fig)


def tune_cutoff(folder: Path, percentiles: list[float], precisions: list[float], bands: list[float]) -> str:
    """Offline: the erroneous cut-off rule's constants, chosen leaving one dataset out, from ``--dump`` files.

    For each held-out dataset the constants that meet the most targets on the *other* datasets'
    runs (ties: the most total slack, capped at 10 points per target) are applied to it.
    """
    from itertools import product

    runs = {f.stem: d for f in sorted(folder.glob("*.npz")) if "calibration_flipped" in (d := np.load(f)).files}
    if not runs:
        raise SystemExit(f"no .npz files with calibration arrays in {folder} (re-run with --dump)")
    dataset = {stem: stem.rsplit("_seed", 1)[0] for stem in runs}
    targets = {stem: TISSUE_TARGETS if dataset[stem] == "tissue" else REAL_TARGETS for stem in runs}
    combos = list(product(percentiles, precisions, bands))
    figs = {(stem, c): _cutoff_figures(runs[stem], *c) for stem in runs for c in combos}

    def slack(fig, tg):
        sign = {">=": 1, "<=": -1, "<": -1}
        return sum(min(10.0, sign[op] * (fig[col] - t)) for col, _l, op, t in tg if col in fig)

    def score(c, stems):
        return (sum(_met(figs[(st, c)], targets[st]) for st in stems),
                sum(slack(figs[(st, c)], targets[st]) for st in stems))

    lines = ["| held out | chosen on the others (percentile, precision, band) | run | clean correct | clean erroneous "
             "| mislabelled erroneous | targets met | clean erroneous at the level finding 70 % of the mislabelled |",
             "|---|---|---|---|---|---|---|---|"]
    total = [0, 0]
    for held in sorted(set(dataset.values())):
        others = [st for st in runs if dataset[st] != held]
        best = max(combos, key=lambda c: score(c, others))
        for st in sorted(st for st in runs if dataset[st] == held):
            f = figs[(st, best)]
            n = len([t for t in targets[st] if t[0] in f])
            met = _met(f, targets[st])
            total[0] += met
            total[1] += n
            d = runs[st]
            level = np.quantile(d["label_quality"][d["mislabelled"]], 0.7)  # what any cut-off rule must take
            lines.append(f"| {held} | {best} | {st} | {f['clean_correct']:.1f} | {f['clean_erroneous']:.1f} | "
                         f"{f['mislabelled_erroneous']:.1f} | {met}/{n} | "
                         f"{_pct(d['label_quality'] <= level, d['clean']):.1f} |")
    overall = max(combos, key=lambda c: score(c, list(runs)))
    lines += ["", f"Held-out targets met: {total[0]}/{total[1]}; chosen on every dataset: {overall} "
                  f"({score(overall, list(runs))[0]} targets met of "
                  f"{sum(len([t for t in targets[s] if t[0] in figs[(s, overall)]]) for s in runs)})."]
    return "\n".join(lines)


def mixtures(folder: Path) -> str:
    """Offline: how the held-out networks see the tissue's transition spots, by share of the other profile.

    Beside the second most likely class (what the ambiguous rule reads), the held-out log-odds of the
    spot's label against the *other region of the pair* (cortex against medulla and back): the most
    direct sign of a mixture the networks' output could give, compared with the clean spots of the
    same two regions.
    """
    from napari_annotatability.core.rules import ambiguous_cutoff

    files = sorted(folder.glob("tissue_seed*.npz"))
    if not files:
        raise SystemExit(f"no tissue_seed*.npz in {folder} (run with --datasets tissue --dump DIR)")
    lines = ["| run | spots | n | second-class probability: median | share at or above the ambiguous cut-off "
             "| log-odds of the label against the other region: median | share below the clean spots' 5th "
             "percentile |", "|---|---|---|---|---|---|---|"]
    for f in files:
        d = np.load(f)
        top2, mix, y = d["oos_top2"], d["mix"], d["label"].astype(np.int64)
        cut = ambiguous_cutoff(top2)
        pair = np.isin(y, (0, 1))  # cortex and medulla, the regions of the transition zone
        if "oos_probabilities" in d.files:
            logp = np.log(np.clip(d["oos_probabilities"].astype(np.float64), 1e-12, 1.0))
            rows = np.arange(y.size)
            odds = np.where(pair, logp[rows, y] - logp[rows, np.where(y == 0, 1, 0)], np.nan)
            low = np.percentile(odds[d["clean"] & pair], 5)
        else:  # dumps from before the probabilities were saved
            odds, low = np.full(y.size, np.nan), np.nan
        groups = [("clean, cortex and medulla", d["clean"] & pair)] + [
            (f"transition, {lo:.0%}–{hi:.0%} of the other profile", d["transition"] & (mix >= lo) & (mix < hi))
            for lo, hi in ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.51))] + [("transition, all", d["transition"])]
        for name, m in groups:
            lines.append(f"| {f.stem} | {name} | {int(m.sum())} | {np.median(top2[m]):.3f} | "
                         f"{_pct(top2 >= cut, m):.1f} % | {np.median(odds[m]):.2f} | {_pct(odds < low, m):.1f} % |")
    return "\n".join(lines)


def _robust_z(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    z = np.zeros(values.shape, dtype=np.float64)
    for g in np.unique(groups):
        m = groups == g
        med = np.median(values[m])
        z[m] = (values[m] - med) / max(1.4826 * np.median(np.abs(values[m] - med)), 1e-12)
    return z


def betweenness(names: list[str], z_cut: float = -2.0) -> str:
    """No training: how a detector of *position between two classes* would fare, as the ambiguous rule.

    Each cell is projected on the line from its label's mean to every other label's mean in PCA
    space (20 components of what the competitors of bench_label_quality see); its largest
    fraction of the way, as a robust z-score within its label (median, MAD), low = pulled toward
    another class.  Reported: the share of the tissue's transition spots, and of the real sets'
    unflipped cells (10 % uniform flips, as in the main table), with z below ``z_cut``.
    """
    import scanpy as sc
    from bench_label_quality import competitor_view

    from napari_annotatability import core

    todo, _ = datasets()
    lines = [f"| dataset | cells | share with z < {z_cut:g} |", "|---|---|---|"]
    for name in names:
        title, make, kind = todo[name]
        adata = make()
        if kind == "tissue":
            y = adata.obs["label"].cat.codes.to_numpy()
            groups = {"clean": ~adata.obs["mislabelled"].to_numpy(bool) & ~adata.obs["transition"].to_numpy(bool),
                      "transition": adata.obs["transition"].to_numpy(bool)}
        else:
            codes = adata.obs["label"].cat.codes.to_numpy().astype(np.int64)
            y, flipped = core.flip_labels(codes, int(codes.max()) + 1, FLIP_RATE, FLIP_SEED_OFFSET)
            groups = {"unflipped": ~flipped}
        view = competitor_view(adata)
        X = np.asarray(view.X.toarray() if hasattr(view.X, "toarray") else view.X, dtype=np.float64)
        X = (X - X.mean(0)) / np.maximum(X.std(0), 1e-12)
        pcs = sc.pp.pca(X, n_comps=min(20, X.shape[1] - 1), random_state=0)
        k = int(y.max()) + 1
        means = np.stack([pcs[y == c].mean(0) if (y == c).any() else np.full(pcs.shape[1], np.nan) for c in range(k)])
        frac = np.full((y.size, k), -np.inf)
        for c in range(k):
            d = means[c] - means[y]
            with np.errstate(invalid="ignore", divide="ignore"):
                frac[:, c] = ((pcs - means[y]) * d).sum(1) / (d * d).sum(1)
        frac[np.arange(y.size), y] = -np.inf
        frac[~np.isfinite(frac)] = -np.inf
        z = -_robust_z(frac.max(1), y)
        for label, m in groups.items():
            lines.append(f"| {title} | {label} ({int(m.sum())}) | {_pct(z < z_cut, m):.1f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a small section and a small stand-in, few epochs, one seed")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds of core.score (default 0,1)")
    ap.add_argument("--datasets", default=None, help="comma-separated names (default: all; 'tissue' is the synthetic one)")
    ap.add_argument("--dump", type=Path, default=None, help="also save every run's per-cell signals here (.npz)")
    ap.add_argument("--noise", type=float, default=None,
                    help="the calibration's injected noise (core.score noise=; default: score's, 0.1)")
    ap.add_argument("--out", default=None, help="also write the markdown report to this file")
    ap.add_argument("--csv", default=None, help="also write every row here")
    ap.add_argument("--from-csv", default=None, help="no training: the report (and --write-docs) from a --csv file")
    ap.add_argument("--write-docs", action="store_true", help=f"rewrite the table in {DOCS.relative_to(HERE.parent)}")
    ap.add_argument("--from-dump", type=Path, default=None,
                    help="no training: recompute the calibrated rule from the .npz files of --dump for the constants "
                         "below (comma-separated lists: every combination)")
    ap.add_argument("--ambiguous-second", default="0.05,0.1,0.25", help="(--from-dump) values to try")
    ap.add_argument("--ambiguous-variability", default="0.15,0.2,0.25,inf", help="(--from-dump) values to try")
    ap.add_argument("--betweenness", action="store_true",
                    help="no training: how a detector of position between two class means (PCA) would call the "
                         "tissue's transition spots and the real sets' unflipped cells (--datasets)")
    ap.add_argument("--mixtures", action="store_true",
                    help="(--from-dump) the tissue's transition spots by share of the other profile: how split the "
                         "held-out networks see them")
    ap.add_argument("--cutoff-rules", action="store_true",
                    help="(--from-dump) choose the erroneous cut-off's constants leaving one dataset out, over "
                         "--percentiles x --precisions x --bands")
    ap.add_argument("--percentiles", default="65,70,75,80", help="(--cutoff-rules) values to try")
    ap.add_argument("--precisions", default="0.25,0.3,0.35,0.4", help="(--cutoff-rules) values to try")
    ap.add_argument("--bands", default="0.5,1.01", help="(--cutoff-rules) values to try (> 1: never raised)")
    ap.add_argument("--late", action="store_true",
                    help="(--from-dump) test the variability bound on the trajectory's last half (variability_late)")
    args = ap.parse_args(argv)
    if args.betweenness:
        names = [n for n in (args.datasets or "tissue,pbmc,scfates,flowsom,wu2020,dlpfc_151675").split(",") if n]
        print(betweenness(names))
        return 0
    if args.from_dump is not None and args.mixtures:
        print(mixtures(args.from_dump))
        return 0
    if args.from_dump is not None and args.cutoff_rules:
        grid = [[float(v) for v in text.split(",") if v] for text in (args.percentiles, args.precisions, args.bands)]
        print(tune_cutoff(args.from_dump, *grid))
        return 0
    if args.from_dump is not None:
        floats = [[float(v) for v in text.split(",") if v] for text in (args.ambiguous_second, args.ambiguous_variability)]
        print(tune(args.from_dump, *floats, key="variability_late" if args.late else "variability"))
        return 0
    if args.from_csv is not None:
        df = pd.read_csv(args.from_csv)
        text = report(df, str(df["note"].iloc[0]), str(df["command"].iloc[0]))
        print(text)
        if args.write_docs:
            write_docs(text)
            print(f"rewrote the table in {DOCS}")
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s]
    extra: dict = {} if args.noise is None else {"noise": args.noise}
    if args.smoke:
        todo = {"tissue": ("synthetic tissue (~600 spots, smoke)", _tissue(n_spots=600), "tissue"),
                "panel": ("synthetic 9-marker panel (800 cells, smoke)", _panel(800), "real")}
        note, seeds, extra = "smoke sizes: not figures to quote", seeds[:1], {**extra, "epochs": 30}
    else:
        todo, note = datasets()
        if args.datasets:
            names = [n for n in args.datasets.split(",") if n]
            unknown = [n for n in names if n not in todo]
            if unknown:
                print(f"unknown dataset(s) {', '.join(unknown)}; choose among {', '.join(todo)}", file=sys.stderr)
                return 2
            todo = {n: todo[n] for n in names}
    rows = []
    for name, (title, make, kind) in todo.items():
        adata = make()
        for seed in seeds:
            for row in run_one(adata, kind, seed, args.dump, name, **extra):
                rows.append({"dataset": name, "title": title, **row})
            last = rows[-2:]
            print(f"  {name} seed {seed} ({last[0]['seconds']:.0f} s): " + "; ".join(
                f"{RULE_NAMES[r['rule']]}: clean correct {r['clean_correct']:.1f} %, clean erroneous "
                f"{r['clean_erroneous']:.1f} %, mislabels erroneous {r['mislabelled_erroneous']:.1f} %"
                + (f", transition ambiguous {r['transition_ambiguous']:.1f} %" if kind == "tissue" else "")
                for r in last), flush=True)
    command = "python benchmarks/bench_categories.py" + (" --smoke" if args.smoke else "") + (
        f" --datasets {args.datasets}" if args.datasets else "") + (f" --seeds {args.seeds}" if args.seeds != "0,1" else "") + (
        f" --noise {args.noise:g}" if args.noise is not None else "")
    df = pd.DataFrame(rows).assign(note=note, command=command)
    text = report(df, note, command)
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.csv:
        df.to_csv(args.csv, index=False)
    if args.write_docs:
        write_docs(text)
        print(f"rewrote the table in {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
