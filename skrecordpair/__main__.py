"""Command line: ``python -m skrecordpair demo`` trains and explains a matcher."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support


def demo(max_epochs=5, random_state=0, out=sys.stdout):
    """Train the default matcher on FEBRL person records, score it and explain it."""
    from . import RecordPairClassifier
    from .datasets import load_febrl

    def say(*args):
        print(*args, file=out, flush=True)

    left, right, y = load_febrl("train")
    test_left, test_right, test_y = load_febrl("test")
    say(f"FEBRL4 person records: {len(y)} training pairs ({y.sum()} matches), "
        f"{len(test_y)} test pairs ({test_y.sum()} matches).")
    say(f"Fields: {', '.join(left.columns)}\n")
    clf = RecordPairClassifier(max_epochs=max_epochs, random_state=random_state, verbose=1)
    start = time.perf_counter()
    clf.fit(left, right, y)
    say(f"\nTrained in {time.perf_counter() - start:.1f} s.")

    start = time.perf_counter()
    predicted = clf.predict(test_left, test_right)
    seconds = time.perf_counter() - start
    precision, recall, f1, _ = precision_recall_fscore_support(test_y, predicted,
                                                               average="binary")
    say(f"Test precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f} "
        f"({len(test_y) / seconds:,.0f} pairs/s)\n")

    proba = clf.predict_proba(test_left, test_right)[:, 1]
    picks = {"a matched pair": int(np.argmax(np.where(test_y == 1, proba, -1))),
             "a non-matched pair": int(np.argmax(np.where(test_y == 0, proba, -1)))}
    with pd.option_context("display.width", 120, "display.max_colwidth", 28):
        for title, i in picks.items():
            rows = [i]
            table, first = evidence_table(clf, test_left.iloc[rows], test_right.iloc[rows])
            say(f"Why {title} (test pair {i}, label {test_y[i]}) was predicted "
                f"{first['prediction']} with p={first['probability']:.3f} "
                f"(evidence for a match, in log-odds, measured from "
                f"{_BASELINES[first['baseline']]}):")
            say(table.round(3).to_string())
            say("")
    return f1


_BASELINES = {"reference": "the records with every field missing",
              "duplicate": "a perfect duplicate"}


def evidence_table(clf, left, right):
    """One pair's explanation as a table: per field, each side's text and
    evidence for a match; and the explanation's first row."""
    explanation = clf.explain(left, right)
    table = explanation.pivot(index="field", columns="side",
                              values=["text", "evidence_for_match"])
    table = table.loc[[f.name for f in clf.fields_]]
    table.columns = [f"{side} {'evidence' if what != 'text' else what}"
                     for what, side in table.columns]
    return (table[["left text", "left evidence", "right text", "right evidence"]],
            explanation.iloc[0])


def main(argv=None):
    """Entry point of ``python -m skrecordpair`` and the ``skrecordpair`` script."""
    parser = argparse.ArgumentParser(prog="skrecordpair", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train, score and explain a matcher on FEBRL")
    run.add_argument("--max-epochs", type=int, default=5)
    run.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(max_epochs=args.max_epochs, random_state=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
