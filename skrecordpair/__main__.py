"""Command line: ``python -m skrecordpair demo`` trains and explains a matcher;
``python -m skrecordpair label`` labels pairs of two tables (or one) in the terminal."""

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
    for side in ("left", "right"):
        # No evidence prints as 0, not -0 (a sign flipped for the non-matches).
        table[f"{side} evidence"] = table[f"{side} evidence"].astype(float) + 0.0
    return (table[["left text", "left evidence", "right text", "right evidence"]],
            explanation.iloc[0])


def read_table(path, id_column=None):
    """A CSV table of records, all values as text, indexed by `id_column` (by
    default ``id`` when the table has it, else the row number)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if id_column is None:
        id_column = "id" if "id" in table.columns else None
    if id_column is not None:
        if id_column not in table.columns:
            raise SystemExit(f"{path}: no column {id_column!r} (the --id column); its "
                             f"columns are {list(table.columns)}.")
        table = table.set_index(id_column)
    return table


def label(args, read=None, write=None):
    """The ``label`` command: an active-learning session in the terminal."""
    from . import (
        ActiveLearner,
        NearestNeighborBlocker,
        label_session,
        read_annotation_file,
        uncertain_pairs,
        write_annotation_file,
    )

    left = read_table(args.left, args.id)
    right = None if args.right is None else read_table(args.right, args.id)
    learner = ActiveLearner(NearestNeighborBlocker(k=args.k), labels=args.labels,
                            batch_size=args.batch_size, random_state=args.seed)
    learner.fit(left, right)
    say = print if write is None else write
    if args.import_annotations:
        imported = read_annotation_file(args.import_annotations).dropna()
        learner.teach_many(imported)
        say(f"Imported {len(imported)} labels from {args.import_annotations}.")
    pairs = None
    if args.review:
        scored = pd.read_csv(args.review, dtype={"left_id": str, "right_id": str})
        pairs = uncertain_pairs(scored, band=args.band)
        say(f"{len(pairs)} pairs of {args.review} to review (probability in "
            f"{args.band[0]}..{args.band[1]}).")
    learner.refit()
    if args.export_annotations:
        batch = pairs if pairs is not None else learner.propose(args.batch_size)
        write_annotation_file(args.export_annotations, batch, left, right)
        say(f"Wrote {len(batch)} pairs to {args.export_annotations}.")
        return 0
    n = label_session(learner, pairs=pairs, max_labels=args.max_labels, read=read,
                      write=write, color=sys.stdout.isatty() and read is None)
    say(f"{n} labels given; all labels are in {args.labels}.")
    return 0


def main(argv=None):
    """Entry point of ``python -m skrecordpair`` and the ``skrecordpair`` script."""
    parser = argparse.ArgumentParser(prog="skrecordpair", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train, score and explain a matcher on FEBRL")
    run.add_argument("--max-epochs", type=int, default=5)
    run.add_argument("--seed", type=int, default=0)
    lab = commands.add_parser(
        "label", help="label pairs of two tables (or one) in the terminal",
        description="Active learning in the terminal: the pairs worth labelling, "
        "side by side; labels go to a CSV file as they are given, and a new "
        "session resumes from it.")
    lab.add_argument("left", help="CSV of the left table (or the only one)")
    lab.add_argument("right", nargs="?", default=None,
                     help="CSV of the right table; without it, deduplicate LEFT")
    lab.add_argument("--labels", required=True,
                     help="the labels CSV (left_id,right_id,label), created if absent")
    lab.add_argument("--id", default=None,
                     help="the id column (default: 'id' if present, else the row)")
    lab.add_argument("--k", type=int, default=10, help="candidates per record")
    lab.add_argument("--batch-size", type=int, default=10, help="pairs per round")
    lab.add_argument("--max-labels", type=int, default=None)
    lab.add_argument("--seed", type=int, default=0)
    lab.add_argument("--review", default=None, help="CSV of scored pairs (left_id, "
                     "right_id, probability), e.g. link()'s output, to review")
    lab.add_argument("--band", type=float, nargs=2, default=(0.2, 0.8),
                     metavar=("LOW", "HIGH"), help="probabilities of the pairs to "
                     "review (default 0.2 0.8)")
    lab.add_argument("--export-annotations", default=None, metavar="JSON",
                     help="write the next pairs to a recordlinkage annotation file "
                     "instead of labelling them here")
    lab.add_argument("--import-annotations", default=None, metavar="JSON",
                     help="add the labels of a recordlinkage annotation file first")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(max_epochs=args.max_epochs, random_state=args.seed)
    elif args.command == "label":
        return label(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
