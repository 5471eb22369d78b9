"""Command line: ``python -m skrecordpair demo`` trains and explains a matcher;
``python -m skrecordpair label`` labels pairs of two tables (or one) in the terminal;
``python -m skrecordpair link`` and ``deduplicate`` train a matcher on those labels
and write the matched pairs."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from ._labelling.session import visible


def demo(max_epochs=5, random_state=0, out=sys.stdout):
    """Train the default matcher on FEBRL person records, score it and explain it."""
    from . import RecordPairClassifier
    from .datasets import load_febrl

    def say(*args):
        print(*args, file=out, flush=True)

    left, right, y = load_febrl("train")
    test_left, test_right, test_y = load_febrl("test")
    say(
        f"FEBRL4 person records: {len(y)} training pairs ({y.sum()} matches), "
        f"{len(test_y)} test pairs ({test_y.sum()} matches)."
    )
    say(f"Fields: {', '.join(left.columns)}\n")
    clf = RecordPairClassifier(
        max_epochs=max_epochs, random_state=random_state, verbose=1
    )
    start = time.perf_counter()
    clf.fit(left, right, y)
    say(f"\nTrained in {time.perf_counter() - start:.1f} s.")

    start = time.perf_counter()
    predicted = clf.predict(test_left, test_right)
    seconds = time.perf_counter() - start
    precision, recall, f1, _ = precision_recall_fscore_support(
        test_y, predicted, average="binary"
    )
    say(
        f"Test precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f} "
        f"({len(test_y) / seconds:,.0f} pairs/s)\n"
    )

    proba = clf.predict_proba(test_left, test_right)[:, 1]
    picks = {
        "a matched pair": int(np.argmax(np.where(test_y == 1, proba, -1))),
        "a non-matched pair": int(np.argmax(np.where(test_y == 0, proba, -1))),
    }
    with pd.option_context("display.width", 120, "display.max_colwidth", 28):
        for title, i in picks.items():
            rows = [i]
            table, first = evidence_table(
                clf, test_left.iloc[rows], test_right.iloc[rows]
            )
            say(
                f"Why {title} (test pair {i}, label {test_y[i]}) was predicted "
                f"{first['prediction']} with p={first['probability']:.3f} "
                f"(evidence for a match, in log-odds, measured from "
                f"{_BASELINES[first['baseline']]}):"
            )
            say(table.round(3).to_string())
            say("")
    return f1


_BASELINES = {
    "reference": "the records with every field missing",
    "duplicate": "a perfect duplicate",
}


def evidence_table(clf, left, right):
    """One pair's explanation as a table: per field, each side's text and
    evidence for a match; and the explanation's first row."""
    explanation = clf.explain(left, right)
    table = explanation.pivot(
        index="field", columns="side", values=["text", "evidence_for_match"]
    )
    table = table.loc[[f.name for f in clf.fields_]]
    table.columns = [
        f"{side} {'evidence' if what != 'text' else what}"
        for what, side in table.columns
    ]
    for side in ("left", "right"):
        # No evidence prints as 0, not -0 (a sign flipped for the non-matches).
        table[f"{side} evidence"] = table[f"{side} evidence"].astype(float) + 0.0
    return (
        table[["left text", "left evidence", "right text", "right evidence"]],
        explanation.iloc[0],
    )


def read_table(path, id_column=None):
    """A CSV table of records, all values as text, indexed by `id_column` (by
    default ``id`` when the table has it, else the row number).

    Raises
    ------
    ValueError
        If `id_column` is not a column of the table, or holds an id twice.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if id_column is None:
        id_column = "id" if "id" in table.columns else None
    if id_column is not None:
        if id_column not in table.columns:
            raise ValueError(
                f"{path}: no column {id_column!r} (the --id column); its "
                f"columns are {list(table.columns)}."
            )
        repeated = table[id_column][table[id_column].duplicated()].unique()
        if len(repeated):
            shown = ", ".join(repr(visible(str(i))) for i in repeated[:5])
            raise ValueError(
                f"{path}: the id column {id_column!r} must name each record "
                f"once; it repeats {len(repeated)} id(s): {shown}"
                f"{', ...' if len(repeated) > 5 else ''}. Name a column of unique "
                "ids with --id."
            )
        table = table.set_index(id_column)
    return table


def _check_labels_path(path):
    """Refuse a labels path that cannot be a labels file before any slow step:
    a directory, a FIFO or device (reading one can block forever), a
    missing folder, or a file that cannot be written."""
    if path.exists():
        if not path.is_file():
            raise ValueError(
                f"--labels {path}: expected a labels CSV file; this path is "
                f"{'a directory' if path.is_dir() else 'not a regular file'}."
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise ValueError(
                f"--labels {path}: the file cannot be read and written "
                "(check its permissions)."
            )
        return
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(
            f"--labels {path}: the folder {str(folder)!r} does not exist; "
            "create it first, or give a path in an existing folder."
        )
    if not os.access(folder, os.W_OK):
        raise ValueError(
            f"--labels {path}: cannot create a file in {str(folder)!r} "
            "(check its permissions)."
        )


def _labels_summary(path):
    """What the labels file holds, in words, and the number of labelled
    pairs (its last line counting for a pair listed twice)."""
    from . import read_labels

    if not path.exists() or path.stat().st_size == 0:
        return f"{path}: new labels file", 0
    labels = read_labels(path).drop_duplicates(["left_id", "right_id"], keep="last")
    counts = labels["label"].value_counts(dropna=False)
    n = len(labels)
    return (
        f"{path}: {n} labels to resume from ({counts.get(1, 0)} matches, "
        f"{counts.get(0, 0)} non-matches, {n - counts.get(1, 0) - counts.get(0, 0)} "
        "unsure)"
    ), n


class _Status:
    """A status line while a slow step runs: the message at once, then (on a
    terminal) the seconds elapsed, rewritten in place every second; and the
    time taken when the step is done."""

    def __init__(self, message, out=None, live=None):
        self.message = message
        self.out = sys.stdout if out is None else out
        self.live = self.out.isatty() if live is None else live

    def __enter__(self):
        import threading

        self.start = time.perf_counter()
        self.out.write(f"{self.message} ...")
        self.out.flush()
        self._done = threading.Event()
        if self.live:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def _tick(self):
        while not self._done.wait(1.0):
            seconds = time.perf_counter() - self.start
            self.out.write(f"\r{self.message} ... {seconds:.0f} s")
            self.out.flush()

    def __exit__(self, kind, error, traceback):
        self._done.set()
        if self.live:
            self._thread.join()
        seconds = time.perf_counter() - self.start
        ending = f"{'done' if kind is None else 'stopped'} in {seconds:.1f} s.\n"
        # On a terminal the line is rewritten; in a log it is ended.
        self.out.write(f"\r{self.message} ... {ending}" if self.live else f" {ending}")
        self.out.flush()
        return False


def label(args, read=None, write=None):
    """The ``label`` command: an active-learning session in the terminal.

    Every check of the command line and the files comes before the slow
    step (blocking and computing the candidates' features); an error raises
    ValueError or OSError, which :func:`main` prints as one line. Returns the
    exit status: 0, or 130 when interrupted by Ctrl-C.
    """
    from . import (
        ActiveLearner,
        NearestNeighborBlocker,
        label_session,
        read_annotation_file,
        uncertain_pairs,
        write_annotation_file,
    )
    from ._labelling.session import PairQueue

    say = print if write is None else write
    labels_path = Path(args.labels)
    _check_labels_path(labels_path)
    left = read_table(args.left, args.id)
    right = None if args.right is None else read_table(args.right, args.id)
    tables = [(args.left, left)] + ([] if right is None else [(args.right, right)])
    for path, table in tables:
        ids = (
            "row numbers"
            if table.index.name is None
            else f"column {table.index.name!r}"
        )
        fields = visible(", ".join(map(str, table.columns)))
        say(f"{path}: {len(table):,} records, fields {fields}; ids: {ids}.")
    summary, n_labels = _labels_summary(labels_path)
    say(summary + ".")
    by_row = [path for path, table in tables if table.index.name is None]
    if by_row:
        _check_row_ids(by_row, labels_path, n_labels, args.row_ids, say)
    review = None
    if args.review:
        scored = pd.read_csv(args.review, dtype={"left_id": str, "right_id": str})
        review = uncertain_pairs(scored, band=args.band)
    imported = None
    if args.import_annotations:
        imported = read_annotation_file(args.import_annotations).dropna()

    learner = ActiveLearner(
        NearestNeighborBlocker(k=args.k),
        labels=args.labels,
        batch_size=args.batch_size,
        random_state=args.seed,
    )
    sizes = " x ".join(f"{len(table):,}" for _, table in tables)
    with _Status(
        f"Finding the {args.k} nearest candidates of each record ({sizes}) "
        "and their similarity features",
        out=_Out(say) if write else None,
    ):
        learner.fit(left, right)
    say(f"{len(learner.candidates_):,} candidate pairs.")
    pairs = None
    if review is not None:
        queue = PairQueue(learner, review)  # unknown ids fail here, before labelling
        repeated = len(review) - len(queue.pairs)
        done = sum(learner.is_labelled(*pair) for pair in queue.pairs)
        notes = [f"{repeated} listed more than once are asked once"] if repeated else []
        notes += [f"{done} already labelled are skipped"] if done else []
        say(
            f"{len(queue.pairs)} pairs of {args.review} to review (probability in "
            f"{args.band[0]}..{args.band[1]}){'; ' if notes else ''}{'; '.join(notes)}."
        )
        pairs = pd.DataFrame(
            [(*pair, queue.probability(pair)) for pair in queue.pairs],
            columns=["left_id", "right_id", "probability"],
        )
    if imported is not None:
        learner.teach_many(imported)
        say(f"Imported {len(imported)} labels from {args.import_annotations}.")
    learner.refit()
    if args.export_annotations:
        batch = pairs if pairs is not None else learner.propose(args.batch_size)
        write_annotation_file(args.export_annotations, batch, left, right)
        say(f"Wrote {len(batch)} pairs to {args.export_annotations}.")
        return 0
    before = _n_labels(learner)
    try:
        n = label_session(
            learner,
            pairs=pairs,
            max_labels=args.max_labels,
            read=read,
            write=write,
            color=sys.stdout.isatty() and read is None,
        )
    except KeyboardInterrupt:
        # Each label went to the file as it was given: nothing is lost.
        total = _n_labels(learner)
        say(
            f"\nInterrupted: {max(total - before, 0)} labels given in this session; "
            f"{total} labels are in {args.labels}, each saved as it was given."
        )
        say(_next_step(args))
        return 130
    say(f"{n} labels given; all labels are in {args.labels}.")
    say(_next_step(args))
    return 0


def _read_records(path, id_column):
    """A table of the ``link``/``deduplicate`` commands (see :func:`read_table`),
    refused when it has no record."""
    try:
        table = read_table(path, id_column)
    except pd.errors.EmptyDataError:
        raise SystemExit(
            f"{path}: the file is empty; expected a CSV table with a "
            "header line and one record per line."
        ) from None
    if len(table) == 0:
        raise SystemExit(
            f"{path}: the table has no record (only its header {list(table.columns)})."
        )
    return table


def _check_labels(path, tables):
    """Refuse a labels file that is missing, lacks a match or a non-match, or
    names ids that are not in the tables, before any blocking or training."""
    from . import read_labels

    try:
        labels = read_labels(path)
    except FileNotFoundError:
        raise SystemExit(
            f"{path}: no such labels file. Label pairs of the tables first: "
            f"python -m skrecordpair label ... --labels {path}"
        ) from None
    except ValueError as error:
        raise SystemExit(str(error)) from None
    for column, (table_path, table) in zip(("left_id", "right_id"), tables):
        known = set(table.index.astype(str))
        unknown = labels.loc[~labels[column].isin(known), column].unique()
        if len(unknown):
            where = (
                "the row numbers"
                if table.index.name is None
                else f"column {table.index.name!r}"
            )
            raise SystemExit(
                f"{path}: {len(unknown)} {column} value(s) are not ids of "
                f"{table_path}: {unknown[:5].tolist()}; its ids ({where}) are e.g. "
                f"{table.index[:5].astype(str).tolist()}. Were the labels given on "
                f"other tables, or is --id-column another column?"
            )
    counts = labels["label"].value_counts()
    if counts.get(1, 0) == 0 or counts.get(0, 0) == 0:
        raise SystemExit(
            f"{path}: training needs at least one match and one non-match; the "
            f"file has {counts.get(1, 0)} match(es) and {counts.get(0, 0)} "
            f"non-match(es). Label more pairs: python -m skrecordpair label ..."
        )


def _estimator(args):
    """The model the ``link``/``deduplicate`` commands train on the labels."""
    from . import RecordPairClassifier

    return RecordPairClassifier(
        max_epochs=args.max_epochs, random_state=args.seed, verbose=int(not args.quiet)
    )


def link_command(args, out=None):
    """The ``link`` and ``deduplicate`` commands: train a matcher on a labels
    file (through :class:`~skrecordpair.ActiveLearner`, which adds the pairs
    its proposer is sure about), match the tables and write the pairs."""
    from . import ActiveLearner, NearestNeighborBlocker, deduplicate, link

    def say(*parts):
        print(*parts, file=out or sys.stdout, flush=True)

    dedupe = args.command == "deduplicate"
    paths = [args.table] if dedupe else [args.left, args.right]
    tables = [_read_records(path, args.id) for path in paths]
    sides = list(zip(paths, tables))
    _check_labels(args.labels, sides * 2 if dedupe else sides)
    verbose = int(not args.quiet)
    learner = ActiveLearner(
        NearestNeighborBlocker(k=args.k),
        _estimator(args),
        labels=args.labels,
        random_state=args.seed,
        verbose=verbose,
    )
    try:
        learner.fit(*tables)
        classifier = learner.fit_estimator()
        if dedupe:
            clusters, matches = deduplicate(
                tables[0],
                NearestNeighborBlocker(k=args.k),
                classifier,
                args.threshold,
                return_pairs=True,
                verbose=verbose,
            )
        else:
            matches = link(
                *tables,
                NearestNeighborBlocker(k=args.k),
                classifier,
                args.threshold,
                one_to_one=args.one_to_one,
                verbose=verbose,
            )
    except ValueError as error:
        raise SystemExit(f"skrecordpair {args.command}: {error}") from None
    matches.to_csv(args.out, index=False)
    # In one table a record is matched more than once whichever side it is on.
    id_lists = (
        [pd.concat([matches["left_id"], matches["right_id"]])]
        if dedupe
        else [matches["left_id"], matches["right_id"]]
    )
    n_again = sum(int((ids.value_counts() > 1).sum()) for ids in id_lists)
    records = (
        f"{len(tables[0]):,} records"
        if dedupe
        else f"{len(tables[0]):,} left and {len(tables[1]):,} right records"
    )
    say(
        f"\n{records}, {len(learner.candidates_):,} candidate pairs (k={args.k}), "
        f"{len(matches):,} matches written to {args.out}."
    )
    say(
        f"{n_again:,} record(s) matched more than once"
        + (
            "."
            if dedupe or args.one_to_one
            else " (--one-to-one keeps each record's best match only)."
        )
    )
    if dedupe:
        sizes = clusters.value_counts()
        say(
            f"{int((sizes > 1).sum()):,} entities with more than one record "
            f"({int(sizes[sizes > 1].sum()):,} records)."
        )
        if args.clusters:
            clusters.rename_axis(tables[0].index.name or "id").to_csv(args.clusters)
            say(f"The entity of every record written to {args.clusters}.")
    return 0


def _add_link_commands(commands):
    """The ``link`` and ``deduplicate`` subcommands of :func:`main`."""
    for name in ("link", "deduplicate"):
        one = name == "deduplicate"
        sub = commands.add_parser(
            name,
            help=(
                "find the duplicate records of one table"
                if one
                else "match the records of two tables"
            ),
            description="Train a RecordPairClassifier on a labels file (as written "
            "by the label command), block the table(s) with NearestNeighborBlocker, "
            "score the candidate pairs and write the matched pairs with their "
            "probabilities.",
        )
        if one:
            sub.add_argument("table", help="CSV of the table")
        else:
            sub.add_argument("left", help="CSV of the left table")
            sub.add_argument("right", help="CSV of the right table")
        sub.add_argument(
            "--labels", required=True, help="the labels CSV (left_id,right_id,label)"
        )
        sub.add_argument(
            "--out",
            required=True,
            help="CSV to write the matched pairs "
            "to (left_id,right_id,similarity,probability)",
        )
        sub.add_argument(
            "--id-column",
            "--id",
            dest="id",
            default=None,
            help="the id column (default: 'id' if present, else the row)",
        )
        sub.add_argument("--k", type=int, default=10, help="candidates per record")
        sub.add_argument(
            "--threshold",
            type=float,
            default=None,
            help="smallest match probability of a written pair "
            "(default: the classifier's own threshold)",
        )
        if one:
            sub.add_argument(
                "--clusters",
                default=None,
                metavar="CSV",
                help="also write the entity (cluster) of every record",
            )
        else:
            sub.add_argument(
                "--one-to-one",
                action="store_true",
                help="match each record at most once (best pairs first)",
            )
        sub.add_argument(
            "--max-epochs",
            type=int,
            default=20,
            help="training epochs of the network (default 20)",
        )
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument(
            "--quiet",
            action="store_true",
            help="print the counts only, not the progress",
        )


def _n_labels(learner):
    report = learner.report()
    return report["n_labels"] + report["n_unsure"]


class _Out:
    """A file-like front for a ``write(text)`` callable, for :class:`_Status`."""

    def __init__(self, write):
        self._write, self._text = write, ""

    def write(self, text):
        self._text += text

    def flush(self):
        if self._text.endswith("\n"):
            self._write(self._text.rstrip("\n"))
            self._text = ""

    def isatty(self):
        return False


def _check_row_ids(paths, labels_path, n_labels, row_ids, say):
    """Tables without an id column are named by row numbers, which a sorted
    or edited CSV silently changes: say so, and resume such labels only when
    the user confirms the rows are unchanged (``--row-ids``)."""
    names = " and ".join(str(p) for p in paths)
    if n_labels and not row_ids:
        raise ValueError(
            f"{labels_path} holds {n_labels} labels, and {names} has no id column, so "
            "its records are named by row number: if the CSV was sorted, filtered or "
            "edited since, those labels now name other records. Resume with "
            "--row-ids if the rows are as they were, or give an id column (--id)."
        )
    say(
        f"Note: {names} has no 'id' column; its records are named by row number "
        "(0, 1, ...), and so are they in the labels. Do not sort, filter or edit "
        "the CSV while it has labels (resuming will need --row-ids), or give an "
        "id column (--id COLUMN)."
    )


def _next_step(args):
    """The command to run next: train on the labels and link the tables."""
    words = ["python", "-m", "skrecordpair", "link", args.left]
    words += [] if args.right is None else [args.right]
    words += ["--labels", args.labels]
    words += [] if args.id is None else ["--id", args.id]
    words += ["--out", "matches.csv"]
    return "Next: train a model on the labels and link the tables with\n  " + " ".join(
        shlex.quote(str(w)) for w in words
    )


def main(argv=None):
    """Entry point of ``python -m skrecordpair`` and the ``skrecordpair`` script."""
    parser = argparse.ArgumentParser(prog="skrecordpair", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "demo", help="train, score and explain a matcher on FEBRL"
    )
    run.add_argument("--max-epochs", type=int, default=5)
    run.add_argument("--seed", type=int, default=0)
    lab = commands.add_parser(
        "label",
        help="label pairs of two tables (or one) in the terminal",
        description="Active learning in the terminal: the pairs worth labelling, "
        "side by side; labels go to a CSV file as they are given, and a new "
        "session resumes from it.",
    )
    lab.add_argument("left", help="CSV of the left table (or the only one)")
    lab.add_argument(
        "right",
        nargs="?",
        default=None,
        help="CSV of the right table; without it, deduplicate LEFT",
    )
    lab.add_argument(
        "--labels",
        required=True,
        help="the labels CSV (left_id,right_id,label), created if absent",
    )
    lab.add_argument(
        "--id",
        default=None,
        help="the id column (default: 'id' if present, else the row)",
    )
    lab.add_argument(
        "--row-ids",
        action="store_true",
        help="resume labels of a table without an id column (named by "
        "row number): the CSV's rows are as they were when labelled",
    )
    lab.add_argument("--k", type=_at_least(1), default=10, help="candidates per record")
    lab.add_argument(
        "--batch-size", type=_at_least(1), default=10, help="pairs per round"
    )
    lab.add_argument("--max-labels", type=_at_least(0), default=None)
    lab.add_argument("--seed", type=int, default=0)
    lab.add_argument(
        "--review",
        default=None,
        help="CSV of scored pairs (left_id, "
        "right_id, probability), e.g. link()'s output, to review",
    )
    lab.add_argument(
        "--band",
        type=float,
        nargs=2,
        default=(0.2, 0.8),
        metavar=("LOW", "HIGH"),
        help="probabilities of the pairs to review (default 0.2 0.8)",
    )
    lab.add_argument(
        "--export-annotations",
        default=None,
        metavar="JSON",
        help="write the next pairs to a recordlinkage annotation file "
        "instead of labelling them here",
    )
    lab.add_argument(
        "--import-annotations",
        default=None,
        metavar="JSON",
        help="add the labels of a recordlinkage annotation file first",
    )
    _add_link_commands(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            demo(max_epochs=args.max_epochs, random_state=args.seed)
        elif args.command == "label":
            return label(args)
        elif args.command in ("link", "deduplicate"):
            return link_command(args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:
        # A user's mistake (a path, a table, an option), not a bug: one line,
        # without the traceback. Record values in it are shown escaped.
        message = "\n".join(visible(line) for line in str(error).splitlines())
        if len(message) > 2000:  # a huge value quoted in the message
            message = message[:1999] + "…"
        print(f"skrecordpair {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0


def _at_least(least):
    """An argparse type: an integer no smaller than `least`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if value < least:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {least}, got {value}"
            )
        return value

    return parse


if __name__ == "__main__":
    sys.exit(main())
