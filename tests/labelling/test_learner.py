"""Tests for the active-learning loop: proposing, learning, reporting, the
final model (the labels file is tested in test_labels_file.py)."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline

from skrecordpair import (
    ActiveLearner,
    NearestNeighborBlocker,
    SimilarityFeatures,
    read_labels,
    uncertain_pairs,
)

from ..conftest import make_learner, make_tables


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=80, n_extra=20, seed=3)
    return left, right, set(true)


_learner = partial(make_learner, k=4, batch_size=10)


def _answer(learner, batch, truth):
    for a, b in zip(batch.left_id, batch.right_id):
        learner.teach(a, b, int((a, b) in truth))


def test_first_round_spreads_over_the_similarity_range(tables):
    learner = _learner(tables)
    similarity = learner.candidates_["similarity"]
    batch = learner.propose()
    assert len(batch) == 10
    assert batch[["left_id", "right_id"]].duplicated().sum() == 0
    # One pair per tenth of the range: the extremes are both covered.
    span = similarity.max() - similarity.min()
    assert batch["similarity"].max() >= similarity.max() - 0.1 * span
    assert batch["similarity"].min() <= similarity.min() + 0.1 * span
    assert batch["probability"].isna().all()  # no proposer without labels


def test_the_loop_learns_and_reports(tables):
    truth = tables[2]
    learner = _learner(tables)
    for _ in range(5):
        _answer(learner, learner.propose(), truth)
        report = learner.refit()
    assert report["n_labels"] == 50 == len(learner.history_) * 10
    assert learner.proposer_ is not None
    assert 0 <= report["estimated_precision"] <= 1
    assert 0 <= report["estimated_recall"] <= 1
    c = learner.candidates_
    predicted = c[c["probability"] > 0.5]
    found = sum((a, b) in truth for a, b in zip(predicted.left_id, predicted.right_id))
    precision, recall = found / len(predicted), found / len(truth)
    assert precision > 0.9 and recall > 0.9
    # Labelled pairs are never proposed again.
    labelled = set(zip(learner.labels_.left_id, learner.labels_.right_id))
    batch = learner.propose()
    assert not labelled & set(zip(batch.left_id, batch.right_id))


def test_uncertain_batches_are_diverse_and_uncertain(tables):
    truth = tables[2]
    learner = _learner(tables, explore=0.0)
    for _ in range(3):
        _answer(learner, learner.propose(), truth)
        learner.refit()
    batch = learner.propose()
    p = learner.candidates_["probability"].to_numpy()
    labelled = learner.candidates_.set_index(["left_id", "right_id"]).index.isin(
        list(zip(learner.labels_.left_id, learner.labels_.right_id))
    )
    # Drawn from the most uncertain pool: at least as uncertain as the median.
    median = np.median(np.abs(p[~labelled] - 0.5))
    assert (np.abs(batch["probability"] - 0.5) <= median).all()
    assert batch[["left_id", "right_id"]].duplicated().sum() == 0


@pytest.mark.parametrize("index", [[1, "1", 2], [True, "True", 2]])
def test_ids_that_are_one_text_are_refused(index):
    left = pd.DataFrame({"name": ["anna smith", "john doe", "jim beam"]}, index=index)
    right = pd.DataFrame(
        {"name": ["ana smith", "jon doe", "jim bean"]}, index=["r1", "r2", "r3"]
    )
    with pytest.raises(
        ValueError,
        match="ids of the left table must be distinct as text.*both read '(1|True)'",
    ):
        ActiveLearner(NearestNeighborBlocker(k=2)).fit(left, right)
    with pytest.raises(ValueError, match="ids of the right table"):
        ActiveLearner(NearestNeighborBlocker(k=2)).fit(right, left)
    with pytest.raises(ValueError, match="ids of the left table"):
        ActiveLearner(NearestNeighborBlocker(k=2)).fit(left)


def test_teach_many_checks_every_row_before_writing_any(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    for bad in (
        {
            "left_id": ["l0", "l1", "nobody"],
            "right_id": ["r0", "r1", "r2"],
            "label": [1, 0, 1],
        },
        {
            "left_id": ["l0", "l1", "l2"],
            "right_id": ["r0", "r1", "r2"],
            "label": [1, 0, 2],
        },
    ):
        with pytest.raises(ValueError, match="teach_many\\(\\), row 2"):
            learner.teach_many(pd.DataFrame(bad))
        assert len(learner.labels_) == 0
        assert path.read_text() == "left_id,right_id,label\n"
    # A float column (labels with NaN in them) is fine: 1.0/0.0, NaN unsure.
    learner.teach_many(
        pd.DataFrame(
            {
                "left_id": ["l0", "l1", "l2"],
                "right_id": ["r0", "r1", "r2"],
                "label": [1.0, np.nan, 0.0],
            }
        )
    )
    assert read_labels(path).astype(object).values.tolist() == [
        ["l0", "r0", 1],
        ["l1", "r1", pd.NA],
        ["l2", "r2", 0],
    ]


def test_teach_refuses_bad_labels(tables):
    learner = _learner(tables)
    with pytest.raises(ValueError, match="label must be 1, 0 or None"):
        learner.teach("l0", "r0", 2)
    with pytest.raises(ValueError, match="names a record id"):
        learner.teach("l0", "nobody", 1)


def test_pairs_outside_the_candidates_are_trained_on(tables):
    learner = _learner(tables)
    c = learner.candidates_
    outside = next(
        (f"l{i}", f"r{j}")
        for i in range(80)
        for j in range(100)
        if not ((c.left_id == f"l{i}") & (c.right_id == f"r{j}")).any()
    )
    learner.teach(*outside, 0).teach(*sorted(tables[2])[0], 1)
    learner.refit()
    X, y = learner.training_pairs()
    assert X.index[0] == outside and list(y) == [0, 1]


def test_exclude_holds_pairs_out(tables):
    left, right, _ = tables
    full = ActiveLearner(NearestNeighborBlocker(k=4)).fit(left, right)
    held_out = full.candidates_.iloc[::2]
    learner = ActiveLearner(NearestNeighborBlocker(k=4)).fit(
        left, right, exclude=held_out
    )
    assert len(learner.candidates_) == len(full.candidates_) - len(held_out)
    kept = set(zip(learner.candidates_.left_id, learner.candidates_.right_id))
    assert not kept & set(zip(held_out.left_id, held_out.right_id))


def test_deduplication_normalises_the_pair_order(tables, tmp_path):
    left = tables[0]
    path = tmp_path / "labels.csv"
    learner = ActiveLearner(NearestNeighborBlocker(k=3), labels=path).fit(left)
    learner.teach("l5", "l2", 0)
    assert learner.labels_[["left_id", "right_id"]].values.tolist() == [["l2", "l5"]]
    with pytest.raises(ValueError, match="with itself"):
        learner.teach("l1", "l1", 1)


def test_exclude_holds_pairs_out_in_either_order_when_deduplicating(tables):
    left = tables[0]
    full = ActiveLearner(NearestNeighborBlocker(k=3)).fit(left)
    held_out = full.candidates_.iloc[::2]
    # The held-out pairs named the other way round: the same pairs.
    swapped = held_out.rename(columns={"left_id": "right_id", "right_id": "left_id"})
    learner = ActiveLearner(NearestNeighborBlocker(k=3)).fit(left, exclude=swapped)
    assert len(learner.candidates_) == len(full.candidates_) - len(held_out)


def test_pair_and_is_labelled_name_pairs_as_the_learner_stores_them(tables):
    left = tables[0]
    learner = ActiveLearner(NearestNeighborBlocker(k=3)).fit(left)
    assert learner.pair("l5", "l2") == ("l2", "l5")
    assert not learner.is_labelled("l2", "l5")
    learner.teach("l5", "l2", None)  # unsure counts as labelled: not asked again
    assert learner.is_labelled("l2", "l5") and learner.is_labelled("l5", "l2")
    with pytest.raises(ValueError, match="names a record id"):
        learner.pair("l2", "nope")


def test_fit_estimator_fits_the_final_model_on_the_labels(tables):
    truth = tables[2]
    model = make_pipeline(
        SimilarityFeatures(), HistGradientBoostingClassifier(min_samples_leaf=2)
    )
    learner = _learner(tables, estimator=model)
    with pytest.raises(ValueError, match="at least one match and one non-match"):
        learner.fit_estimator()
    for _ in range(3):
        _answer(learner, learner.propose(), truth)
        learner.refit()
    fitted = learner.fit_estimator()
    assert fitted is learner.estimator_ and fitted is not model
    X, y = learner.training_pairs()
    assert (fitted.predict(X) == y).mean() > 0.9


class _Recorder(ClassifierMixin, BaseEstimator):
    """Keeps the pairs it is fitted on."""

    def fit(self, X, y):
        self.X_, self.y_, self.classes_ = X, np.asarray(y), np.unique(y)
        return self


def _labelled_learner(tables, **params):
    learner = _learner(tables, **params)
    for _ in range(3):
        _answer(learner, learner.propose(), tables[2])
        learner.refit()
    return learner


def test_pseudo_labelled_pairs_are_sure_unlabelled_candidates(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _labelled_learner(tables, labels=path, pseudo_labels=25)
    written = path.read_text()
    X, y = learner.pseudo_labelled_pairs()
    assert len(X) == len(y) == 25  # the pool holds more sure pairs than that
    c = learner.candidates_.set_index(["left_id", "right_id"])
    p = c.loc[X.index, "probability"].to_numpy()
    assert ((p >= 0.9) | (p <= 0.1)).all()
    np.testing.assert_array_equal(y, (p > 0.5).astype(int))
    labelled = set(zip(learner.labels_.left_id, learner.labels_.right_id))
    assert not labelled & set(X.index)
    # Seeded: the same draw each time; and never written to the labels file.
    X_again, _ = learner.pseudo_labelled_pairs()
    assert list(X_again.index) == list(X.index)
    assert path.read_text() == written
    # Mostly right: the proposer is sure of them for a reason.
    truth = tables[2]
    assert (
        np.mean([int(pair in truth) == label for pair, label in zip(X.index, y)]) > 0.9
    )


def test_fit_estimator_trains_on_the_labels_and_the_pseudo_labels(tables):
    learner = _labelled_learner(tables, estimator=_Recorder(), pseudo_labels=25)
    fitted = learner.fit_estimator()
    X_labels, y_labels = learner.training_pairs()
    X_sure, y_sure = learner.pseudo_labelled_pairs()
    assert list(fitted.X_.index) == list(X_labels.index) + list(X_sure.index)
    np.testing.assert_array_equal(fitted.y_, np.r_[y_labels, y_sure])
    learner.pseudo_labels = 0
    fitted = learner.fit_estimator()
    assert list(fitted.X_.index) == list(X_labels.index)


def test_explore_draws_predicted_matches(tables):
    learner = _labelled_learner(tables, explore=1.0)
    batch = learner.propose()
    assert len(batch) == 10 and (batch["probability"] > 0.5).all()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"explore": 1.5}, "explore must be a number in"),
        ({"pseudo_labels": -1}, "pseudo_labels must be a non-negative integer"),
        (
            {"pseudo_confidence": 0.5},
            r"pseudo_confidence must be a number in \(0.5, 1\]",
        ),
    ],
)
def test_bad_parameters_are_refused(tables, params, message):
    with pytest.raises(ValueError, match=message):
        ActiveLearner(**params).fit(tables[0], tables[1])


def test_unfitted_learner_says_so():
    with pytest.raises(AttributeError, match="not fitted yet"):
        ActiveLearner().propose()


def test_uncertain_pairs_keeps_the_band_most_uncertain_first():
    pairs = pd.DataFrame(
        {
            "left_id": [1, 2, 3, 4],
            "right_id": [5, 6, 7, 8],
            "probability": [0.1, 0.75, 0.52, 0.3],
        }
    )
    assert uncertain_pairs(pairs).left_id.tolist() == [3, 4, 2]
    assert uncertain_pairs(pairs, band=(0.0, 0.2)).left_id.tolist() == [1]
    with pytest.raises(
        ValueError,
        match=r"band must be a pair \(low, high\) of numbers "
        r"with 0 <= low <= high <= 1; got \(0.8, 0.2\)\.",
    ):
        uncertain_pairs(pairs, band=(0.8, 0.2))
    with pytest.raises(ValueError, match="lacks \\['probability'\\]"):
        uncertain_pairs(pairs.drop(columns="probability"))


def test_pseudo_labels_when_deduplicating_leave_out_the_labelled_pairs(tables):
    left, right, truth = tables
    people = pd.concat([left, right])  # one table: its duplicates are the true links
    learner = ActiveLearner(
        NearestNeighborBlocker(k=4), batch_size=10, random_state=0, pseudo_labels=40
    ).fit(people)
    for _ in range(3):
        for a, b in zip(*(learner.propose()[c] for c in ("left_id", "right_id"))):
            # The learner stores a pair in table order, either side may come first.
            learner.teach(b, a, int((a, b) in truth or (b, a) in truth))
        learner.refit()
    X, y = learner.pseudo_labelled_pairs()
    assert len(X) == 40
    labelled = {
        frozenset(p) for p in zip(learner.labels_.left_id, learner.labels_.right_id)
    }
    assert not labelled & {frozenset(p) for p in X.index}  # in either order
    assert all(a != b for a, b in X.index)
    right_answers = [
        int((a, b) in truth or (b, a) in truth) == label
        for (a, b), label in zip(X.index, y)
    ]
    assert np.mean(right_answers) > 0.9


def test_teach_many_and_exclude_name_the_missing_columns(tables):
    learner = _learner(tables)
    with pytest.raises(
        ValueError,
        match=r"The labels passed to teach_many\(\) must have the columns "
        r"\['left_id', 'right_id', 'label'\]; it lacks \['label'\]",
    ):
        learner.teach_many(pd.DataFrame({"left_id": ["l0"], "right_id": ["r0"]}))
    assert learner.labels_.empty
    from skrecordpair._labelling.learner import _without

    with pytest.raises(ValueError, match=r"exclude must have the columns .*lacks"):
        _without(learner.candidates_, pd.DataFrame({"left_id": ["l0"]}))
