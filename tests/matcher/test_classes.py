"""Which label is the match (pos_label), thresholds, and how X and y are paired."""

import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skrecordpair import NearestNeighborBlocker, RecordPairClassifier, pair_frame
from skrecordpair._linking import deduplicate, link
from skrecordpair._matcher.classifier import best_f1_threshold

from ..conftest import TINY, make_people_pairs, make_tables

# The error of anything that needs to know which of "match" / "non-match" is the match.
NEEDS_POS_LABEL = (
    r"needs to know which class is the match; the classes are "
    r"\['match', 'non-match'\]\. Pass pos_label="
)


def tiny(**kwargs):
    params = dict(TINY, max_epochs=2, random_state=0)
    params.update(kwargs)
    return RecordPairClassifier(**params)


@pytest.fixture(scope="module")
def words():
    """The people pairs with the labels "match" / "non-match" (sorted: the match first)."""
    left, right, y = make_people_pairs(120, seed=0)
    return left, right, np.where(y == 1, "match", "non-match")


# ---------------------------------------------------------------- pos_label


def test_string_labels_fit_and_predict_without_pos_label(words):
    left, right, labels = words
    clf = tiny().fit(left, right, labels)
    proba = clf.predict_proba(left, right)
    # Without a threshold to apply, predict is the most probable class.
    np.testing.assert_array_equal(
        clf.predict(left, right), clf.classes_[proba.argmax(1)]
    )
    assert clf.score(left, right, labels) > 0.5
    # Which of the two is the match is unknown, so there is no threshold_.
    with pytest.raises(ValueError, match=NEEDS_POS_LABEL):
        _ = clf.threshold_
    assert not hasattr(clf, "threshold_")
    # Multiclass string labels need no pos_label either.
    three = np.where(np.arange(len(labels)) % 3 == 0, "maybe", labels)
    clf3 = tiny().fit(left, right, three)
    assert set(clf3.predict(left, right)) <= {"match", "maybe", "non-match"}


def test_a_threshold_without_pos_label_is_refused(words):
    left, right, labels = words
    with pytest.raises(ValueError, match=NEEDS_POS_LABEL):
        tiny(decision_threshold=0.7).fit(left, right, labels)


@pytest.mark.parametrize("threshold", ["auto", 0.5])
def test_auto_or_half_without_pos_label_predict_the_most_probable_class(
    words, threshold
):
    # "auto" (the default) has no match class to choose a threshold for.
    left, right, labels = words
    clf = tiny(decision_threshold=threshold).fit(left, right, labels)
    assert not hasattr(clf, "threshold_")
    np.testing.assert_array_equal(
        clf.predict(left, right), clf.classes_[clf.predict_proba(left, right).argmax(1)]
    )


def test_pos_label_is_the_class_the_threshold_applies_to(words):
    left, right, labels = words
    clf = tiny(pos_label="match", decision_threshold=0.7).fit(left, right, labels)
    assert clf.threshold_ == 0.7
    match = clf.predict_proba(left, right)[:, 0]  # classes_ = ["match", "non-match"]
    expected = np.where(match > 0.7, "match", "non-match")
    np.testing.assert_array_equal(clf.predict(left, right), expected)
    assert (expected == "match").any() and (expected == "non-match").any()


def test_auto_threshold_maximises_f1_of_pos_label(words):
    left, right, labels = words
    X = pair_frame(left, right)
    valid = (X.iloc[:40], labels[:40])
    clf = tiny(pos_label="match", decision_threshold="auto").fit(
        X.iloc[40:], labels[40:], validation_data=valid
    )
    scores = clf.predict_proba(valid[0])[:, 0]
    assert clf.threshold_ == pytest.approx(
        best_f1_threshold((valid[1] == "match").astype(int), scores)
    )
    np.testing.assert_array_equal(
        clf.predict(X),
        np.where(clf.predict_proba(X)[:, 0] > clf.threshold_, "match", "non-match"),
    )


@pytest.mark.parametrize(
    "classes, positive",
    [
        (np.array([0, 1]), 1),
        (np.array([-1, 1]), 1),
        (np.array([False, True]), True),
        (np.array([0.0, 1.0]), 1.0),
    ],
)
def test_pos_label_is_inferred_only_when_unambiguous(classes, positive):
    left, right, y = make_people_pairs(60, seed=1)
    labels = classes[y]
    clf = tiny(max_epochs=1, decision_threshold=0.6).fit(left, right, labels)
    column = int(np.flatnonzero(clf.classes_ == positive)[0])
    proba = clf.predict_proba(left, right)[:, column]
    np.testing.assert_array_equal(
        clf.predict(left, right), np.where(proba > 0.6, positive, classes[1 - column])
    )


def test_invalid_pos_label(words, people):
    left, right, labels = words
    with pytest.raises(
        ValueError,
        match=r"pos_label='yes' is not one of the classes "
        r"\['match', 'non-match'\]",
    ):
        tiny(pos_label="yes").fit(left, right, labels)
    _, _, y = people
    with pytest.raises(ValueError, match="pos_label=2 is not one of the classes"):
        tiny(pos_label=2).fit(left, right, y)
    three = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="pos_label.*binary.*3 classes"):
        tiny(pos_label=1).fit(left, right, three)


def test_pos_label_survives_save_and_load(words, tmp_path):
    left, right, labels = words
    clf = tiny(pos_label="match", decision_threshold=0.7).fit(left, right, labels)
    clf.save(tmp_path / "m")
    loaded = RecordPairClassifier.load(tmp_path / "m")
    assert loaded.pos_label == "match" and loaded.threshold_ == 0.7
    np.testing.assert_array_equal(loaded.predict(left, right), clf.predict(left, right))


def _edit_saved(path, name, edit):
    """Rewrite a JSON file of a saved model, and the manifest to match."""
    data = json.loads((path / name).read_text())
    edit(data)
    (path / name).write_text(json.dumps(data))
    manifest = json.loads((path / "manifest.json").read_text())
    for file, entry in manifest["files"].items():
        content = (path / file).read_bytes()
        entry.update(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    (path / "manifest.json").write_text(json.dumps(manifest))


def _save_as_before_pos_label(clf, path, threshold=None):
    """Save `clf` as a version without pos_label did: no such parameter, and
    ``threshold_`` (on the probability of ``classes_[1]``) for any binary model."""
    clf.save(path)
    _edit_saved(path, "config.json", lambda config: config["params"].pop("pos_label"))
    if threshold is not None:
        _edit_saved(
            path,
            "model.json",
            lambda model: model["estimator"]["attributes"].update(threshold_=threshold),
        )


def test_a_model_saved_without_pos_label_still_loads(people, words, tmp_path):
    left, right, y = people
    clf = tiny(decision_threshold=0.6).fit(left, right, y)
    _save_as_before_pos_label(clf, tmp_path / "numbers")
    loaded = RecordPairClassifier.load(tmp_path / "numbers")
    assert loaded.pos_label is None and loaded.threshold_ == 0.6
    np.testing.assert_array_equal(loaded.predict(left, right), clf.predict(left, right))
    # String labels and the default threshold: the most probable class, as before.
    left, right, labels = words
    clf = tiny().fit(left, right, labels)
    _save_as_before_pos_label(clf, tmp_path / "words", threshold=0.5)
    loaded = RecordPairClassifier.load(tmp_path / "words")
    assert loaded.pos_label is None and not hasattr(loaded, "threshold_")
    np.testing.assert_array_equal(loaded.predict(left, right), clf.predict(left, right))
    # String labels and another threshold: it was on classes_[1], which stays
    # the class it applies to.
    clf = tiny(pos_label="non-match", decision_threshold=0.3).fit(left, right, labels)
    _save_as_before_pos_label(clf, tmp_path / "chosen")
    with pytest.warns(UserWarning, match="pos_label='non-match'"):
        loaded = RecordPairClassifier.load(tmp_path / "chosen")
    assert loaded.pos_label == "non-match" and loaded.threshold_ == 0.3
    np.testing.assert_array_equal(loaded.predict(left, right), clf.predict(left, right))


def test_a_saved_pos_label_that_is_no_class_is_refused(words, tmp_path):
    left, right, labels = words
    tiny(pos_label="match").fit(left, right, labels).save(tmp_path / "m")
    _edit_saved(
        tmp_path / "m",
        "config.json",
        lambda config: config["params"].update(pos_label="yes"),
    )
    with pytest.raises(ValueError, match="pos_label='yes' is not one of the classes"):
        RecordPairClassifier.load(tmp_path / "m")


# ------------------------------------------------------- link / deduplicate


@pytest.fixture(scope="module")
def table_pairs():
    """Candidate pairs of linking tables and their labels "match" / "non-match"."""
    left, right, true = make_tables(n=80, n_extra=20, seed=10)
    cands = NearestNeighborBlocker(k=5).fit(right).candidates(left)
    is_match = np.array([p in set(true) for p in zip(cands.left_id, cands.right_id)])
    X = pair_frame(left.loc[cands.left_id], right.loc[cands.right_id])
    return X, np.where(is_match, "match", "non-match")


def test_link_and_deduplicate_need_to_know_the_match_label(table_pairs):
    X, labels = table_pairs
    clf = tiny().fit(X, labels)
    left, right, _ = make_tables(seed=11)
    with pytest.raises(ValueError, match=NEEDS_POS_LABEL):
        link(left, right, NearestNeighborBlocker(k=3), clf)
    with pytest.raises(ValueError, match=NEEDS_POS_LABEL):
        deduplicate(right, NearestNeighborBlocker(k=3), clf)


class FixedProbability(ClassifierMixin, BaseEstimator):
    """Probability 0.9 of its first class and 0.1 of its second for every pair."""

    def __init__(self, classes=(0, 1), pos_label=None):
        self.classes = classes
        self.pos_label = pos_label

    def fit(self, X, y=None):
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X):
        return np.tile([0.9, 0.1], (len(X), 1))


@pytest.mark.parametrize(
    "classes, pos_label, probability",
    [
        ((0, 1), None, 0.1),
        ((-1, 1), None, 0.1),
        ((False, True), None, 0.1),
        (("match", "non-match"), "match", 0.9),
        (("a", "b"), "b", 0.1),
        ((1, 2), 1, 0.9),
    ],
)
@pytest.mark.parametrize("pipeline", [False, True])
def test_link_takes_the_column_of_the_match_class(
    classes, pos_label, probability, pipeline
):
    clf = FixedProbability(classes, pos_label)
    if pipeline:
        clf = make_pipeline(FunctionTransformer(), clf)
    left, right, _ = make_tables(n=10, n_extra=0, seed=1)
    matches = link(left, right, NearestNeighborBlocker(k=2), clf.fit(None), threshold=0)
    assert len(matches) == 20
    assert (matches["probability"] == probability).all()
    # threshold=None: the classifier's decision, match probability above 0.5.
    assert len(link(left, right, NearestNeighborBlocker(k=2), clf)) == (
        20 if probability > 0.5 else 0
    )


@pytest.mark.parametrize("classes", [(1, 2), ("match", "non-match"), (0.0, 0.5)])
def test_link_without_a_known_match_class_says_so(classes):
    left, right, _ = make_tables(n=10, n_extra=0, seed=1)
    clf = make_pipeline(FunctionTransformer(), FixedProbability(classes)).fit(None)
    with pytest.raises(
        ValueError,
        match=r"link\(\) needs to know which class is the "
        r"match.*Pass pos_label=",
    ):
        link(left, right, NearestNeighborBlocker(k=2), clf)
    clf[-1].set_params(pos_label="yes")
    with pytest.raises(ValueError, match="pos_label='yes' is not one of the classes"):
        deduplicate(right, NearestNeighborBlocker(k=2), clf)


def test_link_uses_pos_label_and_the_classifiers_threshold(table_pairs):
    X, labels = table_pairs
    clf = tiny(max_epochs=4, pos_label="match", decision_threshold=0.3).fit(X, labels)
    left, right, _ = make_tables(seed=11)
    blocker = NearestNeighborBlocker(k=3)
    everything = link(left, right, blocker, clf, threshold=0)
    candidates = pair_frame(
        left.loc[everything.left_id], right.loc[everything.right_id]
    )
    # The probability is that of "match", the first class.
    np.testing.assert_allclose(
        everything["probability"], clf.predict_proba(candidates)[:, 0]
    )
    # threshold=None: the pairs that predict calls a match.
    matches = link(left, right, blocker, clf)
    predicted = clf.predict(candidates) == "match"
    assert 0 < predicted.sum() < len(predicted)
    found = set(zip(matches.left_id, matches.right_id))
    assert found == set(
        zip(everything.left_id[predicted], everything.right_id[predicted])
    )
    _, pairs = deduplicate(right, blocker, clf, return_pairs=True)
    dedup_all = deduplicate(right, blocker, clf, threshold=0, return_pairs=True)[1]
    X_dedup = pair_frame(right.loc[dedup_all.left_id], right.loc[dedup_all.right_id])
    kept = clf.predict(X_dedup) == "match"
    assert set(zip(pairs.left_id, pairs.right_id)) == set(
        zip(dedup_all.left_id[kept], dedup_all.right_id[kept])
    )


def test_link_default_threshold_is_the_classifiers(table_pairs):
    X, labels = table_pairs
    y = (labels == "match").astype(int)
    clf = tiny(max_epochs=4).fit(X, y)
    left, right, _ = make_tables(seed=11)
    blocker = NearestNeighborBlocker(k=3)
    everything = link(left, right, blocker, clf, threshold=0)
    candidates = pair_frame(
        left.loc[everything.left_id], right.loc[everything.right_id]
    )
    # A threshold_ that splits the candidates elsewhere than 0.5 does (as
    # decision_threshold="auto" may choose; the trained model is too confident
    # for a fixed one to matter).
    proba = np.sort(everything["probability"].to_numpy())
    clf.threshold_ = float(proba[np.searchsorted(proba, 0.5) // 2])
    predicted = clf.predict(candidates) == 1
    default = link(left, right, blocker, clf)
    assert set(zip(default.left_id, default.right_id)) == set(
        zip(everything.left_id[predicted], everything.right_id[predicted])
    )
    half = link(left, right, blocker, clf, threshold=0.5)
    assert len(half) < len(default)  # an explicit threshold wins
    _, pairs = deduplicate(right, blocker, clf, return_pairs=True)
    _, dedup_all = deduplicate(right, blocker, clf, threshold=0, return_pairs=True)
    X_dedup = pair_frame(right.loc[dedup_all.left_id], right.loc[dedup_all.right_id])
    kept = clf.predict(X_dedup) == 1
    assert set(zip(pairs.left_id, pairs.right_id)) == set(
        zip(dedup_all.left_id[kept], dedup_all.right_id[kept])
    )


# ------------------------------------------------------------- X, y pairing


def _shuffled_series(labels, index, seed=0):
    order = np.random.default_rng(seed).permutation(len(labels))
    return pd.Series(np.asarray(labels)[order], index=index[order])


def test_y_with_the_same_labels_in_another_order_is_refused(people):
    left, right, y = people
    X = pair_frame(left, right)
    y_shuffled = _shuffled_series(y, X.index)
    with pytest.raises(
        ValueError, match=r"same labels.*other order.*y\.loc\[X\.index\]"
    ):
        tiny().fit(X, y_shuffled)
    with pytest.raises(ValueError, match=r"same labels.*other order"):
        tiny().fit(left, right, y_shuffled)
    fitted = tiny(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"same labels.*other order"):
        fitted.score(X, y_shuffled)
    with pytest.raises(ValueError, match=r"same labels.*other order"):
        tiny(max_epochs=1).fit(X, y, validation_data=(X, y_shuffled))
    # Aligned as the message says, it fits.
    tiny(max_epochs=1).fit(X, y_shuffled.loc[X.index])
    # The same labels in the same order, or different labels (record ids on
    # the frames, a RangeIndex on y): paired by position.
    ids = pd.Index([f"p{i}" for i in range(len(y))])
    tiny(max_epochs=1).fit(X.set_axis(ids), pd.Series(y, index=ids))
    other = pd.Index([f"q{i}" for i in range(len(y))])
    tiny(max_epochs=1).fit(left.set_axis(ids), right.set_axis(other), pd.Series(y))


def test_left_and_right_with_the_same_labels_in_another_order_are_refused(people):
    left, right, y = people
    ids = np.array([f"e{i}" for i in range(len(y))])
    order = np.random.default_rng(0).permutation(len(y))
    left_ids, right_ids = left.set_axis(ids), right.set_axis(ids[order])
    with pytest.raises(
        ValueError, match=r"X_left and X_right.*same labels.*other order"
    ):
        tiny().fit(left_ids, right_ids, y)
    fitted = tiny(max_epochs=1).fit(left, right, y)
    with pytest.raises(
        ValueError, match=r"X_left and X_right.*same labels.*other order"
    ):
        fitted.predict_proba(left_ids, right_ids)
    # Records repeated across pairs (record ids) are paired by position.
    repeated = np.repeat(ids[: len(y) // 2], 2)
    fitted.predict(left.set_axis(repeated), right.set_axis(repeated[::-1]))


def test_indexes_sharing_nearly_all_labels_in_another_order_warn(people):
    # 19 of 20 labels shared, in another order: most likely meant to be
    # matched by label, but paired by position (silently, before).
    left, right, y = people
    n = len(y)
    ids = np.array([f"e{i}" for i in range(n)])
    order = np.random.default_rng(0).permutation(n)
    near = ids[order].copy()
    near[0] = "stranger"
    X = pair_frame(left, right).set_axis(ids)
    fitted = tiny(max_epochs=1).fit(left, right, y)
    with pytest.warns(
        UserWarning,
        match=rf"y is a Series whose index shares {n - 1} of "
        rf"its {n} labels with the index of X, some at "
        r"other positions.*paired by position",
    ):
        fitted.score(X, pd.Series(y, index=near))
    with pytest.warns(
        UserWarning,
        match=rf"X_left and X_right share {n - 1} of their "
        rf"{n} labels",
    ):
        fitted.predict_proba(left.set_axis(ids), right.set_axis(near))
    # Positions that already agree with the labels, labels mostly not shared,
    # repeated labels (the record ids of candidate pairs) or a plain array y:
    # no warning.
    one_off = ids.copy()
    one_off[3] = "stranger"
    half = np.concatenate([ids[order][: n // 2], [f"q{i}" for i in range(n - n // 2)]])
    repeated = np.repeat(ids[: n // 2], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.score(X, pd.Series(y, index=one_off))
        fitted.score(X, pd.Series(y, index=half))
        fitted.score(X, np.asarray(y))
        fitted.predict_proba(left.set_axis(ids), right.set_axis(one_off))
        fitted.predict_proba(left.set_axis(repeated), right.set_axis(repeated[::-1]))


# ------------------------------------------------------------ degenerate fits


def test_zero_pairs_say_so(people):
    left, right, _ = people
    with pytest.raises(ValueError, match=r"0 pairs.*at least two classes"):
        tiny().fit(left.iloc[:0], right.iloc[:0], np.array([], dtype=int))


def test_extreme_numbers_give_finite_probabilities(people):
    left, right, y = people
    left, right = left.copy(), right.copy()
    clf = tiny(max_epochs=1).fit(left, right, y)
    assert "year" in clf.numeric_fields_
    a = [1e308, -1e308, 1e308, 5e-324, 0, 5e-324, "1" + "0" * 400, "9" * 30, -1e308]
    b = [-1e308, 1e308, 1e308, 0, 5e-324, -5e-324, "-" + "9" * 400, "1", 1e-308]
    rows = np.arange(len(a))
    X = pair_frame(left.iloc[rows], right.iloc[rows])
    X["left_year"] = pd.Series(a, dtype=object)
    X["right_year"] = pd.Series(b, dtype=object)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
