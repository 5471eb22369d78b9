"""add_candidate_nonmatches, and the warnings of link and deduplicate when the
matches per record are implausible."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from skrecordpair import (
    NearestNeighborBlocker,
    add_candidate_nonmatches,
    deduplicate,
    link,
    pair_frame,
)

LEFT = pd.DataFrame(
    {"name": ["anna smith", "john doe", "carl marx", "dora day"]},
    index=["l1", "l2", "l3", "l4"],
)
RIGHT = pd.DataFrame(
    {
        "name": [
            "ana smith",
            "anna smyth",
            "jon doe",
            "john dough",
            "karl marx",
            "nora bay",
        ]
    },
    index=["r1", "r2", "r3", "r4", "r5", "r6"],
)


def labels(rows):
    return pd.DataFrame(rows, columns=["left_id", "right_id", "label"])


def test_adds_the_other_candidates_of_matched_records_as_nonmatches():
    given = labels([("l1", "r1", 1), ("l2", "r3", 1), ("l2", "r4", 0), ("l4", "r6", 0)])
    blocker = NearestNeighborBlocker(k=3)
    out = add_candidate_nonmatches(LEFT, RIGHT, given, blocker)
    pd.testing.assert_frame_equal(out.iloc[:4], given)
    added = out.iloc[4:]
    candidates = blocker.fit(RIGHT).candidates(LEFT.loc[["l1", "l2"]])
    expected = {p for p in zip(candidates.left_id, candidates.right_id)} - {
        ("l1", "r1"),
        ("l2", "r3"),
        ("l2", "r4"),
    }
    assert set(zip(added.left_id, added.right_id)) == expected
    assert (added.label == 0).all()
    # l3 has no label and l4 no match: none of their candidates is added.
    assert not added.left_id.isin(["l3", "l4"]).any()
    assert out.label.dtype == given.label.dtype


def test_string_labels_need_pos_label_and_keep_their_values():
    given = labels([("l1", "r1", "same"), ("l2", "r5", "different")])
    with pytest.raises(ValueError, match="pass pos_label"):
        add_candidate_nonmatches(LEFT, RIGHT, given, NearestNeighborBlocker(k=2))
    out = add_candidate_nonmatches(
        LEFT, RIGHT, given, NearestNeighborBlocker(k=2), pos_label="same"
    )
    assert set(out.label.iloc[2:]) == {"different"}
    assert len(out) > 2


def test_only_matches_given_uses_zero_or_false():
    out = add_candidate_nonmatches(
        LEFT, RIGHT, labels([("l1", "r1", True)]), NearestNeighborBlocker(k=2)
    )
    assert out.label.tolist() == [True, False]
    out = add_candidate_nonmatches(
        LEFT, RIGHT, labels([("l1", "r1", 1)]), NearestNeighborBlocker(k=2)
    )
    assert out.label.tolist() == [1, 0]


def test_records_with_several_matches_are_left_out():
    # Two matches of l1: the right table holds duplicates, the assumption fails.
    given = labels([("l1", "r1", 1), ("l1", "r2", 1)])
    out = add_candidate_nonmatches(LEFT, RIGHT, given, NearestNeighborBlocker(k=4))
    assert len(out) == 2


def test_unsure_labels_are_kept_and_never_matches():
    given = labels([("l1", "r1", 1), ("l2", "r3", np.nan)])
    out = add_candidate_nonmatches(LEFT, RIGHT, given, NearestNeighborBlocker(k=2))
    assert np.isnan(out.label.iloc[1])
    assert not out.left_id.iloc[2:].eq("l2").any()


def test_errors_say_what_was_expected():
    blocker = NearestNeighborBlocker(k=2)
    with pytest.raises(TypeError, match="expects labels as a DataFrame"):
        add_candidate_nonmatches(LEFT, RIGHT, [("l1", "r1", 1)], blocker)
    with pytest.raises(
        ValueError,
        match=r"add_candidate_nonmatches\(\) must have the "
        r"columns \['left_id', 'right_id', 'label'\]; "
        r"it lacks \['label'\]",
    ):
        add_candidate_nonmatches(
            LEFT, RIGHT, labels([("l1", "r1", 1)])[["left_id", "right_id"]], blocker
        )
    with pytest.raises(ValueError, match=r"right_id value\(s\).*\['r9'\]"):
        add_candidate_nonmatches(LEFT, RIGHT, labels([("l1", "r9", 1)]), blocker)
    with pytest.raises(ValueError, match="record ids and must be unique"):
        add_candidate_nonmatches(
            pd.concat([LEFT, LEFT]), RIGHT, labels([("l1", "r1", 1)]), blocker
        )


def every_pair_a_match(table):
    X = pair_frame(table.iloc[[0, 1, 2]], table.iloc[[1, 2, 0]])
    return DummyClassifier(strategy="constant", constant=1).fit(X, [1, 0, 1])


def test_link_warns_when_most_records_match_several_times():
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), 6)) for _ in range(30)]
    left = pd.DataFrame({"name": words[:15]})
    right = pd.DataFrame({"name": words[15:]})
    clf = every_pair_a_match(left)
    with pytest.warns(
        UserWarning,
        match=r"matched 15 of the 15 matched left records "
        r"\(100%\) with several.*one_to_one=True",
    ):
        link(left, right, NearestNeighborBlocker(k=3), clf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = link(left, right, NearestNeighborBlocker(k=3), clf, one_to_one=True)
    assert one.left_id.is_unique


def test_deduplicate_warns_when_one_entity_takes_most_records():
    table = pd.DataFrame({"name": [f"anna smith {i}" for i in range(60)]})
    with pytest.warns(UserWarning, match="put 60 of the 60 records in one entity"):
        clusters = deduplicate(
            table, NearestNeighborBlocker(k=3), every_pair_a_match(table)
        )
    assert clusters.nunique() == 1


def test_one_to_one_also_adds_the_other_left_records_of_matched_right_records():
    given = labels([("l1", "r1", 1)])
    blocker = NearestNeighborBlocker(k=6)
    out = add_candidate_nonmatches(LEFT, RIGHT, given, blocker, one_to_one=True)
    candidates = blocker.fit(RIGHT).candidates(LEFT)
    expected = {
        p
        for p in zip(candidates.left_id, candidates.right_id)
        if p[0] == "l1" or p[1] == "r1"
    } - {("l1", "r1")}
    added = out.iloc[1:]
    assert set(zip(added.left_id, added.right_id)) == expected
    assert set(added.left_id) - {"l1"}  # r1 was a candidate of other records too
    assert (added.label == 0).all()
    plain = add_candidate_nonmatches(LEFT, RIGHT, given, blocker)
    assert set(plain.left_id) == {"l1"}
    with pytest.raises(TypeError, match="one_to_one must be a bool"):
        add_candidate_nonmatches(LEFT, RIGHT, given, blocker, one_to_one="yes")


# ---------------------------------------- RecordPairClassifier(candidate_nonmatches)
def _training_pairs():
    """Labelled pairs as a benchmark gives them: each left record with its
    match and one random non-match, none of the blocker's near misses."""
    given = labels([("l1", "r1", 1), ("l1", "r5", 0), ("l2", "r3", 1), ("l2", "r6", 0)])
    return pair_frame(LEFT.loc[given.left_id], RIGHT.loc[given.right_id]), given


def test_near_miss_pairs_are_add_candidate_nonmatches_on_the_records_of_the_pairs():
    from skrecordpair._candidate_nonmatches import near_miss_pairs
    from skrecordpair._pairs import resolve_fields

    X, given = _training_pairs()
    added = near_miss_pairs(
        X,
        (given.label == 1).to_numpy(),
        resolve_fields(X.columns, None, "left_", "right_"),
    )
    # The tables are the distinct records of the pairs: l1, l2 and r1, r3, r5, r6.
    expected = add_candidate_nonmatches(
        LEFT.loc[["l1", "l2"]],
        RIGHT.loc[["r1", "r3", "r5", "r6"]],
        given,
        NearestNeighborBlocker(),
    ).iloc[len(given) :]
    assert list(added.columns) == list(X.columns)
    got = set(zip(added.left_name, added.right_name))
    assert got == set(zip(LEFT.name[expected.left_id], RIGHT.name[expected.right_id]))
    assert len(got) == len(added) > 0


def test_near_misses_skip_identical_records_and_records_matched_twice():
    from skrecordpair._candidate_nonmatches import near_miss_pairs
    from skrecordpair._pairs import resolve_fields

    left = pd.DataFrame(
        {"name": ["anna smith", "anna smith", "john smith", "ann smith"]}
    )
    right = pd.DataFrame(
        {"name": ["anna smith", "ana smith", "jon smith", "john smith"]}
    )
    # anna smith has two labelled matches: none of her candidates is added.
    # john smith has one: his other candidates are, but not the right record
    # "john smith", identical to him. ann smith has no match: nothing.
    X = pair_frame(left, right)
    is_match = np.array([True, True, True, False])
    added = near_miss_pairs(
        X, is_match, resolve_fields(X.columns, None, "left_", "right_")
    )
    assert set(zip(added.left_name, added.right_name)) == {
        ("john smith", "anna smith"),
        ("john smith", "ana smith"),
    }
    assert not (added.left_name == added.right_name).any()


def test_classifier_adds_near_misses_by_default(people):
    from skrecordpair import RecordPairClassifier

    from .conftest import TINY

    left, right, y = people
    params = {**TINY, "max_epochs": 1, "random_state": 0}
    params.pop("candidate_nonmatches")
    default = RecordPairClassifier(**params).fit(left, right, y)
    assert RecordPairClassifier().candidate_nonmatches == "auto"
    assert default.n_candidate_nonmatches_ > 0
    # They are non-matches in training: the network saw more pairs.
    trained = sum(default.net_.history_[-1, "batches", :, "train_batch_size"])
    valid = sum(default.net_.history_[-1, "batches", :, "valid_batch_size"])
    assert trained + valid == len(y) + default.n_candidate_nonmatches_
    off = RecordPairClassifier(**params, candidate_nonmatches=False).fit(left, right, y)
    assert off.n_candidate_nonmatches_ == 0
    assert sum(off.net_.history_[-1, "batches", :, "train_batch_size"]) < trained
    # A continued fit keeps its pairs as given.
    default.set_params(warm_start=True).fit(left, right, y)
    assert default.n_candidate_nonmatches_ == 0


def test_classifier_near_misses_with_string_labels_and_missing_values(people):
    from skrecordpair import RecordPairClassifier

    from .conftest import TINY

    left, right, y = people
    left = left.copy()
    left.iloc[::7, 0] = np.nan
    labelled = np.where(y == 1, "match", "different")
    params = {**TINY, "max_epochs": 1, "random_state": 0, "candidate_nonmatches": True}
    with pytest.raises(ValueError, match="binary task whose match class is known"):
        RecordPairClassifier(**params).fit(left, right, labelled)
    clf = RecordPairClassifier(**params, pos_label="match").fit(left, right, labelled)
    assert clf.n_candidate_nonmatches_ > 0
    # "auto" without a known match class adds nothing, and says so.
    params["candidate_nonmatches"] = "auto"
    clf = RecordPairClassifier(**params).fit(left, right, labelled)
    assert clf.n_candidate_nonmatches_ == 0


def test_classifier_near_misses_in_multiclass_tasks(people):
    from skrecordpair import RecordPairClassifier

    from .conftest import TINY

    left, right, y = people
    relation = np.array(["same", "other", "related"])[np.arange(len(y)) % 3]
    params = {**TINY, "max_epochs": 1, "random_state": 0}
    params["candidate_nonmatches"] = "auto"
    assert (
        RecordPairClassifier(**params)
        .fit(left, right, relation)
        .n_candidate_nonmatches_
        == 0
    )
    params["candidate_nonmatches"] = True
    with pytest.raises(
        ValueError, match=r"got the classes \['other', 'related', 'same'\]"
    ):
        RecordPairClassifier(**params).fit(left, right, relation)


def test_near_misses_are_at_most_the_labelled_pairs_nearest_first():
    from skrecordpair._candidate_nonmatches import near_miss_pairs
    from skrecordpair._pairs import resolve_fields

    from .conftest import make_tables

    left, right, truth = make_tables(n=60, n_extra=20, seed=2)
    pairs = sorted(truth)  # only matches: each has up to 9 other candidates
    X = pair_frame(left.loc[[a for a, _ in pairs]], right.loc[[b for _, b in pairs]])
    fields = resolve_fields(X.columns, None, "left_", "right_")
    added = near_miss_pairs(X, np.ones(len(X), dtype=bool), fields)
    assert 0 < len(added) <= len(X)
    # The same number per record: each record's nearest, none dropped unevenly.
    per_record = added.groupby(list(added.columns[: len(fields)]), sort=False).size()
    assert per_record.nunique() == 1
    # Each record keeps its first ones, in the blocker's order (decreasing
    # similarity).
    from skrecordpair._candidate_nonmatches import _nearest

    ranked = pd.DataFrame({"left_id": list("aaabbc"), "right_id": [1, 2, 3, 4, 5, 6]})
    assert _nearest(ranked, 4).right_id.tolist() == [1, 4, 6]
    assert _nearest(ranked, 5).right_id.tolist() == [1, 2, 4, 5, 6]
    assert _nearest(ranked, 1).right_id.tolist() == [1, 4, 6]  # one per record
    assert _nearest(ranked, 6).equals(ranked)
