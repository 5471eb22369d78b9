"""What the long steps say with ``verbose``, the checks of the fitted columns
before blocking, and the warnings about record-id columns used as fields."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline

from skrecordpair import (
    ActiveLearner,
    NearestNeighborBlocker,
    RecordPairClassifier,
    SimilarityFeatures,
    deduplicate,
    link,
    pair_frame,
)
from skrecordpair._matcher import classifier as _classifier
from skrecordpair._matcher import featurizer as _featurizer

from .conftest import TINY, make_tables


@pytest.fixture(scope="module")
def tables():
    return make_tables(n=30, n_extra=10)


def _stand_in(left, right):
    """A classifier of the tables' pair frames that calls every pair a match
    with probability 0.75, fitted in no time."""
    X = pair_frame(left.iloc[[0, 0, 0, 1]], right.iloc[[0, 1, 2, 1]])
    return DummyClassifier(strategy="prior").fit(X, [1, 1, 1, 0])


def _lines(text):
    # tqdm redraws its bar with carriage returns: one line per redraw.
    return text.replace("\r", "\n").splitlines()


def test_link_is_silent_by_default_and_reports_every_step_with_verbose(tables, capsys):
    left, right, _ = tables
    clf = _stand_in(left, right)
    quiet = link(left, right, NearestNeighborBlocker(k=3), clf)
    assert capsys.readouterr() == ("", "")
    loud = link(left, right, NearestNeighborBlocker(k=3), clf, batch_size=25, verbose=1)
    pd.testing.assert_frame_equal(quiet, loud)
    out, err = capsys.readouterr()
    n = 3 * len(left)
    assert "[link] Blocking: 30 left records against 40 right records ..." in out
    assert "[link] Blocking: 30 left records against 40 right records: done in" in out
    assert f"[link] {len(loud)} of {n} candidate pairs are matches" in out
    # The blocker, cloned, reports too; its bar counts the left records.
    assert "[NearestNeighborBlocker] Indexing 40 records" in out
    assert any(
        "Searching the 3 nearest records" in line and "30/30" in line
        for line in _lines(err)
    )
    # The scoring bar ends at the number of candidate pairs, in pairs.
    assert any(
        "[link] Scoring candidate pairs" in line
        and f"{n}/{n}" in line
        and "pairs" in line
        for line in _lines(err)
    )


def test_link_counts_the_scored_pairs_batch_by_batch(tables, monkeypatch):
    left, right, _ = tables
    updates = []

    class Bar:
        def __init__(self, total, **kwargs):
            self.total = total

        def update(self, n):
            updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def close(self):
            pass

    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    link(
        left,
        right,
        NearestNeighborBlocker(k=3),
        _stand_in(left, right),
        batch_size=25,
        verbose=1,
    )
    # 30 searched left records in one block, then 90 pairs in batches of 25.
    assert updates == [30, 25, 25, 25, 15]


def test_deduplicate_reports_with_verbose(tables, capsys):
    left, _, _ = tables
    clusters = deduplicate(left, NearestNeighborBlocker(k=2), _stand_in(left, left))
    assert capsys.readouterr() == ("", "")
    assert deduplicate(
        left, NearestNeighborBlocker(k=2), _stand_in(left, left), verbose=1
    ).equals(clusters)
    out, err = capsys.readouterr()
    assert "[deduplicate] Blocking: 30 records ..." in out
    assert "candidate pairs are matches (probability > 0.5)" in out
    assert "[deduplicate] Scoring candidate pairs" in err


def test_blocker_verbose_indexing_and_search(tables, capsys):
    left, right, _ = tables
    blocker = NearestNeighborBlocker(k=2).fit(right)
    blocker.candidates(left)
    assert capsys.readouterr() == ("", "")
    blocker = NearestNeighborBlocker(k=2, blocking_keys="city", verbose=1).fit(right)
    out, _ = capsys.readouterr()
    assert "[NearestNeighborBlocker] Indexing 40 records (1 view(s)" in out
    assert "distinct records indexed." in out
    blocker.candidates(left)
    # Records whose city no fitted record has are counted done too.
    assert any("30/30" in line for line in _lines(capsys.readouterr().err))
    blocker.candidates()
    assert any("40/40" in line for line in _lines(capsys.readouterr().err))


def test_classifier_fit_says_what_it_featurises(people, capsys, monkeypatch):
    left, right, y = people
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0, verbose=1)
    clf.fit(left, right, y)
    out, _ = capsys.readouterr()
    for step in (
        "Vocabularies of 120 pairs (3 fields)",
        "Similarity features of 120 pairs",
        "Similarity prior",
        "Encoding 120 pairs for the network",
    ):
        said = [
            line
            for line in out.splitlines()
            if line.startswith(f"[RecordPairClassifier] {step}")
        ]
        # Before the step (what the wait is for), and after it with its time.
        assert len(said) == 2 and said[0].endswith(" ...") and "done in" in said[1]
    assert "[RecordPairClassifier] Training the network on 120 pairs." in out
    # predict_proba shows a bar when it featurises more than one chunk.
    proba = clf.predict_proba(left, right)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_featurizer, "CHUNK_SIZE", 50)
    monkeypatch.setattr(_classifier, "CHUNK_SIZE", 50)
    np.testing.assert_allclose(clf.predict_proba(left, right), proba, atol=1e-5)
    assert any(
        "Featurising and scoring pairs" in line and "120/120" in line
        for line in _lines(capsys.readouterr().err)
    )
    clf.set_params(verbose=0).predict_proba(left, right)
    assert capsys.readouterr() == ("", "")


def test_active_learner_verbose_reports_and_passes_it_on(tables, capsys):
    left, right, true = tables
    model = make_pipeline(SimilarityFeatures(), HistGradientBoostingClassifier())
    learner = ActiveLearner(
        NearestNeighborBlocker(k=3), model, random_state=0, pseudo_labels=20, verbose=1
    ).fit(left, right)
    out = capsys.readouterr().out
    assert "[ActiveLearner] Blocking: 30 records against 40 ..." in out
    assert "[ActiveLearner] Similarity features of 90 candidate pairs: done in" in out
    assert "[NearestNeighborBlocker] Indexing 40 records" in out
    for left_id, right_id in true[:6] + [("l0", "r1"), ("l1", "r2"), ("l2", "r3")]:
        learner.teach(left_id, right_id, int((left_id, right_id) in true))
    fitted = learner.fit_estimator()
    out, _ = capsys.readouterr()
    assert "[ActiveLearner] Fitting Pipeline on 9 labelled and" in out
    # The final model got the learner's verbose: the pipeline times its steps.
    assert fitted.verbose is True and "[Pipeline]" in out
    assert model.verbose is False  # the learner's own estimator is untouched
    quiet = ActiveLearner(NearestNeighborBlocker(k=3), model, random_state=0)
    quiet.fit(left, right)
    assert capsys.readouterr() == ("", "")


# ----------------------------------------------------- the fitted columns
def test_link_refuses_tables_without_the_fitted_columns_before_blocking(tables):
    left, right, _ = tables
    clf = _stand_in(left, right)

    class Blocker(NearestNeighborBlocker):
        def fit(self, X, y=None):
            raise AssertionError("blocked before the columns were checked")

    with pytest.raises(
        ValueError,
        match=r"left passed to link\(\) \(the classifier "
        r"was fitted on left records with these columns\) must have the "
        r"columns \['first', 'last', 'city', 'born'\]; it lacks \['city'\] "
        r"\(its columns are \['first', 'last', 'born'\]\)\.",
    ):
        link(left.drop(columns="city"), right, Blocker(), clf)
    with pytest.raises(
        ValueError,
        match=r"right passed to link\(\) \(.* right "
        r"records .*\) must have .* it lacks \['born'\]",
    ):
        link(left, right.drop(columns="born"), Blocker(), clf)
    with pytest.raises(
        ValueError,
        match=r"table passed to deduplicate\(\) .* it lacks "
        r"\['first'\]",
    ):
        deduplicate(left.drop(columns="first"), Blocker(), _stand_in(left, left))


def test_link_scores_the_fitted_columns_of_tables_with_more(tables):
    # A column the classifier never saw (say, a blocking key) used to make
    # predict_proba refuse the pair frames after the blocking.
    left, right, _ = tables
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0)
    X = pair_frame(left.iloc[:20], right.iloc[:20])
    clf.fit(X, np.arange(20) % 2)
    region = {"region": "north"}
    blocker = NearestNeighborBlocker(k=2, fields=["last"], blocking_keys="region")
    matches = link(
        left.assign(**region), right.assign(**region), blocker, clf, threshold=0
    )
    expected = link(
        left, right, NearestNeighborBlocker(k=2, fields=["last"]), clf, threshold=0
    )
    pd.testing.assert_frame_equal(matches, expected)


# --------------------------------------------------------- id-like columns
def test_blocker_warns_about_a_column_of_record_ids(tables):
    right = tables[1]
    with_ids = right.reset_index(names="id")  # read without index_col="id"
    with pytest.warns(
        UserWarning,
        match=r"NearestNeighborBlocker compares the "
        r"column 'id' as a field, but it looks like the record ids.*"
        r"index_col='id'.*set_index\('id'\)",
    ):
        NearestNeighborBlocker().fit(with_ids)
    with pytest.warns(UserWarning, match="'record_ID'"):
        NearestNeighborBlocker().fit(right.reset_index(names="record_ID"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NearestNeighborBlocker().fit(right)  # ids in the index
        NearestNeighborBlocker(fields=["first", "last"]).fit(with_ids)  # not a field
        # An id-like attribute with repeated values is not the record ids.
        NearestNeighborBlocker().fit(
            right.reset_index(drop=True).assign(tax_id=["a", "b"] * 20)
        )


def test_classifier_warns_about_a_field_of_record_ids(people):
    left, right, y = people
    n = len(y)
    # Record ids differ in the matches; a social security number agrees.
    left = left.assign(
        record_id=[f"a{i}" for i in range(n)], soc_sec_id=[f"{i:07d}" for i in range(n)]
    )
    right = right.assign(
        record_id=[f"b{i}" for i in range(n)], soc_sec_id=[f"{i:07d}" for i in range(n)]
    )
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0)
    with pytest.warns(UserWarning) as record:
        clf.fit(left, right, y)
    messages = [str(w.message) for w in record if w.category is UserWarning]
    assert len(messages) == 1, messages
    assert (
        "RecordPairClassifier compares the column 'record_id' as a field" in messages[0]
    )
    assert "differ in 100% of the matching pairs" in messages[0]
    assert "index_col='record_id'" in messages[0]
