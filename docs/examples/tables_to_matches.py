"""From two tables to explained matches: load, train, block, link, explain.

The Fodors-Zagats restaurant benchmark, in the ER-Magellan layout: two tables
of restaurants (tableA.csv, tableB.csv) and labeled pairs of their ids. Give
the folder as the first argument or in the environment variable
SKRECORDPAIR_FODORS_ZAGATS:

    python tables_to_matches.py path/to/fodors_zagats
"""

import os
import sys
from pathlib import Path

import pandas as pd

from skrecordpair import NearestNeighborBlocker, RecordPairClassifier, link, pair_frame
from skrecordpair.datasets import load_magellan

# In a checkout of skrecordpair, the benchmark data sits beside the repository.
DEFAULT_PATH = str(
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "magellan"
    / "fodors_zagats"
)


def main(path):
    # The tables are indexed by their ids; the splits are labeled pair frames.
    data = load_magellan(path, as_frame=True)
    left, right = data.left_table, data.right_table
    print(
        f"tableA: {len(left)} records, tableB: {len(right)} records, "
        f"fields {data.fields}"
    )

    # Labels as people write them: "match" / "non-match". pos_label says which
    # one is the match, for the decision threshold and for link.
    def named(labels):
        return pd.Series(labels).map({1: "match", 0: "non-match"})

    X_train, y_train = data.train
    X_valid, y_valid = data.valid
    # A small, quick model: a few epochs, the benchmark's validation pairs for
    # early stopping and the decision threshold.
    clf = RecordPairClassifier(
        max_epochs=4, decision_threshold="auto", pos_label="match", random_state=0
    )
    clf.fit(X_train, named(y_train), validation_data=(X_valid, named(y_valid)))

    # Blocking proposes the 5 most similar tableB records of each tableA
    # record; link scores those pairs and keeps those that the classifier
    # calls a match (above its threshold_).
    matches = link(left, right, NearestNeighborBlocker(k=5), clf, one_to_one=True)
    print(f"{len(matches)} matches among {5 * len(left)} candidate pairs at most")
    print(matches.head())

    # The matches name their records by id, the ids of the split files: how
    # many of the labeled matches were linked?
    labeled = pd.concat(
        [
            pd.read_csv(data.path / f"{split}.csv", dtype=str)
            for split in ("train", "valid", "test")
        ]
    )
    labeled = labeled[labeled["label"] == "1"]
    known = set(zip(labeled["ltable_id"], labeled["rtable_id"]))
    found = known & set(zip(matches["left_id"], matches["right_id"]))
    print(f"{len(found)} of the {len(known)} labeled matches were linked")

    # Explain the most probable match: its pair frame indexed by the two ids,
    # as link builds it, so the explanation names its records.
    best = matches.nlargest(1, "probability")
    X = pair_frame(left.loc[best["left_id"]], right.loc[best["right_id"]])
    X.index = pd.MultiIndex.from_frame(best[["left_id", "right_id"]])
    explanation = clf.explain(X)
    first = explanation.iloc[0]
    print(
        f"explained pair: tableA id {first['left_id']}, "
        f"tableB id {first['right_id']}, "
        f"prediction: {first['prediction']}, "
        f"P({first['prediction']}) = {first['probability']:.3f}"
    )
    print(explanation[["side", "field", "text", "attribution"]])
    return matches, explanation


if __name__ == "__main__":
    main(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("SKRECORDPAIR_FODORS_ZAGATS", DEFAULT_PATH)
    )
