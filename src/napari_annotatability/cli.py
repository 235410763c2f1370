"""Command line: ``napari-annotatability score|graph|demo``.

Headless entry point over :mod:`napari_annotatability.core`, for notebooks' big brothers:
cluster nodes, pipelines, batch jobs.  Every failure is one line on stderr and a non-zero
exit status; the input file is never modified and the output is written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

PROG = "napari-annotatability"
#: core._threads.ENV_VAR (not imported: importing core loads torch)
THREADS_ENV_VAR = "NAPARI_ANNOTATABILITY_THREADS"

THREADS_HELP = ("CPU threads for training and the graph (default: follow the machine -- one for small networks, "
                "else the cores other processes leave free; or set NAPARI_ANNOTATABILITY_THREADS)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


INPUT_HELP = ("an .h5ad, a Xenium / MERSCOPE / CosMx / Visium HD / Visium output folder, or a SpatialData "
              ".zarr store")
INPUTS = ("INPUT is an .h5ad file, a platform folder as the instrument wrote it (10x Xenium, Vizgen MERSCOPE, "
          "NanoString CosMx, 10x Visium HD or Visium Space Ranger output), or a SpatialData .zarr store: its table "
          "is scored, with each cell's centroid in obsm['spatial'].")


def _add_input_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    g.add_argument("--bin-size", type=_positive, default=8, metavar="UM",
                   help="Visium HD: bin size in µm (binned_outputs/square_XXXum; default 8)")
    g.add_argument("--table", default=None,
                   help="SpatialData: which table to score (default: 'table', or the only one)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--recipe", default="adaptive", choices=("adaptive", "published"),
                   help="adaptive (default): epochs, learning rate and width floor derived from the data; "
                        "published: the paper's (100 epochs, lr 1e-3, no floor)")
    g.add_argument("--epochs", type=int, default=None, help="training epochs (default: from the recipe)")
    g.add_argument("--lr", type=float, default=None, help="SGD learning rate (default: from the recipe)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    g.add_argument("--batch-size", type=int, default=256, help="mini-batch size (default 256)")
    g.add_argument("--depth", type=int, default=3, choices=(3, 4, 5), help="network depth (default 3)")
    g.add_argument("--min-hidden", type=int, default=None, help="floor on hidden widths (default: from the recipe)")
    g.add_argument("--balance", type=float, default=None, metavar="P",
                   help="draw cells in proportion to count(class)^-P: 1 = every class equally often (the published "
                        "sampler), 0 = a shuffle (default: the recipe's, 0.5 for adaptive, 1 for published)")
    g.add_argument("--unbalanced", action="store_true", help="shuffle instead of drawing by class (--balance 0)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--n-seeds", type=int, default=1,
                   help="train a seed ensemble of N networks and average their scores (default 1; costs N trainings)")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    g.add_argument("--threads", type=_positive, default=None, help=THREADS_HELP)
    g.add_argument("--layer", default=None, help="use adata.layers[LAYER] instead of X")
    g.add_argument("--input", dest="input_mode", default="auto", choices=("auto", "as-is"),
                   help="auto (default): detect raw counts / log-normalised / intensities / scaled input and train "
                        "on a normalised, standardised copy of each batch (the file is not changed); as-is: train "
                        "on X exactly as it is")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Find mis-annotated and ambiguous cells by how hard a network finds them to learn.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "score",
        help="score cells or spots: dynamics, categories, label correction, genes",
        description="Train on an annotation and write confidence, variability, categories, "
        "suggested labels and gene scores to a new .h5ad (the input is never modified). " + INPUTS,
    )
    s.add_argument("input", type=Path, help=INPUT_HELP + " (log-normalised X, or use --preprocess)")
    s.add_argument("--label", required=True, help="obs column with the annotation to examine")
    s.add_argument("--out", required=True, type=Path, help="output .h5ad of the scored table (must differ from "
                                                           "the input)")
    _add_input_args(s)
    _add_training_args(s)
    c = s.add_argument_group("categories and label correction")
    c.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="skip noise-injection calibration of the cut-offs")
    c.add_argument("--noise", type=float, default=0.1, help="fraction of labels flipped to calibrate (default 0.1)")
    c.add_argument("--rule", default="calibrated", choices=("calibrated", "paper"),
                   help="category rule. calibrated (default): erroneous = label quality at or below the calibrated "
                        "cut-off, ambiguous = the network cannot settle the cell, correct = the rest; paper: the "
                        "published rule on confidence and variability")
    c.add_argument("--quality-percentile", type=float, default=None,
                   help="(rule calibrated) percentile of the flipped cells' label quality that sets the erroneous "
                        "cut-off (default: core.rules.ERRONEOUS_PERCENTILE, 75)")
    c.add_argument("--quality-cutoff", type=float, default=None,
                   help="(rule calibrated) given label-quality cut-off (skips calibration)")
    c.add_argument("--ambiguous-second", type=float, default=None,
                   help="(rule calibrated) ambiguous when the second most likely label gets at least this "
                        "out-of-sample probability, and at least its 95th percentile over the cells "
                        "(default: core.rules.AMBIGUOUS_SECOND, 0.1)")
    c.add_argument("--ambiguous-variability", type=float, default=None,
                   help="(rule calibrated) ... or when the variability is at least this "
                        "(default: core.rules.AMBIGUOUS_VARIABILITY, inf: off)")
    c.add_argument("--percentile", type=float, default=90,
                   help="(rule paper) percentile of the flipped cells' confidence and variability (default 90)")
    c.add_argument("--conf-cutoff", type=float, default=None,
                   help="(rule paper) given confidence cut-off (skips calibration)")
    c.add_argument("--var-cutoff", type=float, default=None,
                   help="(rule paper) given variability cut-off (skips calibration)")
    c.add_argument("--no-correct", dest="correct", action="store_false", help="skip label correction")
    c.add_argument("--correction", default="auto", choices=("auto", "cross-fit", "retrain"),
                   help="suggested labels from the cross-fitted networks (auto, default, when the out-of-sample "
                        "check runs) or from the paper's retraining on non-erroneous cells (retrain)")
    c.add_argument("--no-genes", dest="genes", action="store_false", help="skip gene association")
    c.add_argument("--no-quality", dest="quality", action="store_false",
                   help="skip the out-of-sample check (no annot_label_quality)")
    o = s.add_argument_group("other")
    o.add_argument("--backed", action="store_true",
                   help="keep X on disk and read it a batch at a time: memory bounded by the batch and the "
                        "model, not the data (for inputs larger than memory; slower; not with --preprocess)")
    o.add_argument("--preprocess", action="store_true",
                   help="log-normalise raw counts and keep 2000 highly variable genes first")
    o.add_argument("--compare", default=None, metavar="KEY",
                   help="a second annotation of the same cells to follow under the same run")
    o.add_argument("--top", type=int, default=10, help="suspicious cells listed in the summary (default 10)")
    o.add_argument("--quiet", action="store_true", help="no progress bars or summary")

    g = sub.add_parser(
        "graph",
        help="trainability-aware graph, Leiden communities and UMAP of a scored table",
        description="Build the trainability-aware kNN graph (expression + confidence rank, optionally "
        "tissue position) of a table scored by 'score', its Leiden communities and a UMAP. " + INPUTS,
    )
    g.add_argument("input", type=Path, help="scored table (obs['annot_confidence']): " + INPUT_HELP)
    g.add_argument("--out", required=True, type=Path, help="output .h5ad (must differ from the input)")
    _add_input_args(g)
    g.add_argument("--alpha", type=float, default=0.9, help="weight of expression vs confidence rank (default 0.9)")
    g.add_argument("--neighbors", type=int, default=15, help="neighbours per cell (default 15)")
    g.add_argument("--spatial-weight", type=float, default=0.0, help="weight of the tissue-distance term (default 0)")
    g.add_argument("--resolution", type=float, default=1.0, help="Leiden resolution (default 1.0)")
    g.add_argument("--use-rep", default="X_pca", help="obsm key of the expression space (default X_pca)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--threads", type=_positive, default=None, help=THREADS_HELP)
    g.add_argument("--no-umap", dest="umap", action="store_false", help="skip the UMAP embedding")
    g.add_argument("--quiet", action="store_true", help="no summary")

    d = sub.add_parser(
        "demo",
        help="open napari on a synthetic tissue section with the widget docked (--headless: score it in the terminal)",
        description="Open napari with a seeded synthetic tissue section (planted mislabels, a transition "
        "zone) and the Annotatability widget, ready to press Train.  With --headless, generate a "
        "synthetic dataset instead, score it and report how well the planted errors were found.",
    )
    d.add_argument("--headless", action="store_true", help="no window: run the pipeline and print a report")
    d.add_argument("--out", type=Path, default=None, help="(--headless) also write the scored sample to this .h5ad")
    d.add_argument("--cells", type=int, default=5000, help="cells in the sample (default 5000)")
    d.add_argument("--epochs", type=int, default=None, help="training epochs (default: the adaptive recipe's)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    d.add_argument("--threads", type=_positive, default=None, help=THREADS_HELP)
    return parser


def _training_kwargs(a: argparse.Namespace) -> dict:
    return dict(
        recipe=a.recipe, epochs=a.epochs, lr=a.lr, momentum=a.momentum, batch_size=a.batch_size, depth=a.depth,
        min_hidden=a.min_hidden, balanced=0.0 if a.unbalanced else a.balance, seed=a.seed, device=a.device, layer=a.layer,
        n_seeds=a.n_seeds, input=a.input_mode,
    )


def _cmd_score(a: argparse.Namespace) -> int:
    from . import core
    from .core._data import get_labels

    _check_paths(a)
    if a.backed and a.preprocess:
        raise core.AnnotatabilityInputError("--preprocess rewrites X in memory: it cannot be combined with --backed")
    adata = core.read_table(a.input, bin_size=a.bin_size, table=a.table, backed=a.backed)
    get_labels(adata, a.label)  # a bad --label fails before any work
    if a.preprocess:
        core.preprocess(adata)
    kwargs = _training_kwargs(a)
    if a.compare is not None:
        kwargs["compare_key"] = a.compare
    for name in ("quality_percentile", "ambiguous_second", "ambiguous_variability"):
        if getattr(a, name) is not None:  # else the package's defaults (core.rules)
            kwargs[name] = getattr(a, name)
    core.score(
        adata, a.label, calibrate=a.calibrate, noise=a.noise, percentile=a.percentile,
        conf_cutoff=a.conf_cutoff, var_cutoff=a.var_cutoff, rule=a.rule, quality_cutoff=a.quality_cutoff,
        correct=a.correct, genes=a.genes,
        correction=a.correction, quality=a.quality, progress=not a.quiet, **kwargs,
    )
    core.write_h5ad(adata, a.out, protect=(a.input,))
    if not a.quiet:
        print(core.summary(adata, a.top))
        print(f"wrote {a.out}")
    return 0


def _check_paths(a: argparse.Namespace) -> None:
    """Fail before any work when --out is the input or cannot be written."""
    from .core.io import check_output_path

    check_output_path(a.out, protect=(a.input,))


def _cmd_graph(a: argparse.Namespace) -> int:
    from . import core
    from .core import keys

    _check_paths(a)
    adata = core.read_table(a.input, bin_size=a.bin_size, table=a.table)
    core.trainability_graph(adata, alpha=a.alpha, n_neighbors=a.neighbors, use_rep=a.use_rep,
                            spatial_weight=a.spatial_weight, seed=a.seed)
    core.communities(adata, resolution=a.resolution, seed=a.seed)
    if a.umap:
        core.trainability_umap(adata, seed=a.seed)
    core.write_h5ad(adata, a.out, protect=(a.input,))
    if not a.quiet:
        info = adata.uns[keys.UNS]["graph"]
        sizes = adata.obs[keys.COMMUNITY].value_counts()
        print(f"{adata.n_obs} cells, {info['n_neighbors']} neighbours, alpha {info['alpha']}, spatial weight "
              f"{info['spatial_weight']}: graph in {info['seconds']:.1f} s; {len(sizes)} communities "
              f"(largest {int(sizes.iloc[0])} cells)")
        print(f"wrote {a.out}")
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    if not a.headless:
        from ._napari._demo import main as gui_demo  # imports napari only when it opens the window

        try:
            import napari  # noqa: F401
        except ImportError as err:
            from .core.errors import AnnotatabilityInputError

            raise AnnotatabilityInputError(
                f"the napari demo needs napari ({err}); pip install 'napari-annotatability[all]', "
                "or run 'napari-annotatability demo --headless'"
            ) from err
        return gui_demo()
    from . import core
    from .core.io import check_output_path

    if a.out is not None:
        check_output_path(a.out)  # a bad --out fails before the training, not after it
    adata = core.make_synthetic(n_cells=a.cells, n_features=200, n_classes=6, seed=a.seed)
    print(f"synthetic sample: {adata.n_obs} cells x {adata.n_vars} genes, 6 types, "
          f"{int(adata.obs['mislabelled'].sum())} planted mislabels, "
          f"{int(adata.obs['intermediate'].sum())} intermediate cells")
    core.score(adata, "label", epochs=a.epochs, seed=a.seed, device=a.device, progress=True)
    print(core.summary(adata, 10))
    obs = adata.obs
    found = (obs["annot_category"] == "erroneous") & obs["mislabelled"]
    print(f"planted mislabels flagged erroneous: {int(found.sum())} of {int(obs['mislabelled'].sum())}; "
          f"AUROC of 1 - confidence for them: {core.auroc(-obs['annot_confidence'], obs['mislabelled']):.3f}; "
          f"suggested label = true label for "
          f"{(obs.loc[obs['mislabelled'], 'annot_suggested_label'].astype(str) == obs.loc[obs['mislabelled'], 'true_label'].astype(str)).mean():.0%} of them")
    if a.out is not None:
        core.write_h5ad(adata, a.out)
        print(f"wrote {a.out}")
    return 0


class _OneLineWarnings:
    """Show warnings as one line on stderr (no source line, no traceback)."""

    def __enter__(self):
        self._old = warnings.showwarning
        warnings.showwarning = lambda msg, cat, *args, **kw: print(f"{PROG}: warning: {msg}", file=sys.stderr)
        return self

    def __exit__(self, *exc):
        warnings.showwarning = self._old


def _no_display(a: argparse.Namespace) -> str | None:
    """Why the demo's window cannot open, checked before any heavy import (Qt would abort)."""
    if a.command != "demo" or a.headless:
        return None
    from ._napari._demo import missing_display  # reads the environment only: no Qt, no napari

    return missing_display()


def _fix_threads(n: int | None) -> None:
    """``--threads``: through the environment, before torch and numba are imported (numba reads it once)."""
    if n is None:
        return
    os.environ[THREADS_ENV_VAR] = str(n)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(n))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    problem = _no_display(args)
    if problem is not None:  # answered before importing core: torch alone takes seconds
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    _fix_threads(getattr(args, "threads", None))
    from .core.errors import AnnotatabilityError, TrainingCancelled

    try:
        with _OneLineWarnings():
            return {"score": _cmd_score, "graph": _cmd_graph, "demo": _cmd_demo}[args.command](args)
    except TrainingCancelled as err:
        print(f"{PROG}: stopped: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except AnnotatabilityError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
