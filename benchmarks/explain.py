"""Explanations on fodors_zagats: which field gets the attribution, and how fast.

fodors_zagats' ``class`` attribute equals on every matching pair and on no other
pair (a known label leak), so a faithful explanation puts most of the attribution
on it. The script trains the default estimator (``valid`` for early stopping),
prints the mean |attribution| per field and side over the test pairs, and the
explain throughput with ``n_steps=50`` (median of several runs). The figures
go to a JSON file (``benchmarks/results/`` unless `--out`).

Usage::

    python benchmarks/explain.py --data /work/shared/data/magellan [--repeats 3]
        [--pairs 256] [--figure docs/_static/explanation.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _bench import Run, add_arguments, magellan_folder, timed_calls

from skrecordpair import RecordPairClassifier
from skrecordpair.datasets import load_magellan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--dataset", default="fodors_zagats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="save plot_explanation of a non-matching test pair here",
    )
    args = parser.parse_args(argv)

    run = Run("explain", args, argv)
    data = load_magellan(magellan_folder(args.data, args.dataset), as_frame=True)
    X, y = data.train
    start = time.perf_counter()
    clf = RecordPairClassifier(random_state=args.seed).fit(
        X, y, validation_data=data.valid
    )
    X_test, y_test = data.test
    run.results.update(
        fit_seconds=time.perf_counter() - start,
        epochs=len(clf.net_.history_),
        test_accuracy=clf.score(X_test, y_test),
    )
    print(
        f"test accuracy {run.results['test_accuracy']:.3f}, "
        f"{run.results['epochs']} epochs"
    )

    explanation = clf.explain(X_test)
    table = explanation.assign(
        abs_attribution=explanation["attribution"].abs()
    ).pivot_table(
        index="field", columns="side", values="abs_attribution", aggfunc="mean"
    )
    table["both"] = table.mean(axis=1)
    table = table.sort_values("both", ascending=False)
    run.results["test_pairs"] = len(X_test)
    run.results["mean_abs_attribution"] = {
        field: row.to_dict() for field, row in table.iterrows()
    }
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(
            "\nmean |attribution| over",
            len(X_test),
            "test pairs (L2-normalised per side):",
        )
        print(table.to_string())
    # The baseline is "the other record", so a field equal on both sides gets no
    # attribution: 'class' should dominate the explanations of non-matches.
    top = (
        explanation.assign(a=explanation["attribution"].abs())
        .sort_values("a")
        .groupby(["pair", "side"])
        .tail(1)
    )
    shares = run.results["class_top_field_share"] = {}
    for label, group in top.groupby("prediction"):
        shares[str(label)] = {
            "share": float(np.mean(group["field"] == "class")),
            "explanations": len(group),
        }
        print(
            f"predicted {label}: 'class' is the top field in "
            f"{shares[str(label)]['share']:.0%} of {len(group)} "
            "(pair, side) explanations"
        )

    if args.figure is not None:
        from skrecordpair import plot_explanation

        # A hard case: the non-match the model found most match-like.
        proba = clf.predict_proba(X_test)[:, 1]
        hardest = X_test.index[np.argmax(np.where(y_test == 0, proba, -1))]
        ax = plot_explanation(explanation, pair=hardest, max_chars=32)
        ax.figure.savefig(args.figure, dpi=100, bbox_inches="tight")
        print(f"figure of pair {hardest} written to {args.figure}")

    sample = pd.concat([X_test] * (args.pairs // len(X_test) + 1)).iloc[: args.pairs]
    timing = run.results["explain"] = timed_calls(
        lambda rows: clf.explain(rows, n_steps=50), sample, args.repeats
    )
    print(
        f"\nexplain, n_steps=50: {args.pairs} pairs in {timing['median_seconds']:.2f} s "
        f"(median of {args.repeats}) = {timing['median_pairs_per_second']:.0f} pairs/s "
        f"(runs: {', '.join(f'{t:.2f}' for t in timing['seconds'])} s)"
    )
    run.write()


if __name__ == "__main__":
    main()
