"""Tests for what the labelling front ends share: the session (what to show
next, teach, undo, the report line), the queue of pairs to review, and the
view of a pair's two records."""

from functools import partial

import pandas as pd
import pytest

from skrecordpair import label_session
from skrecordpair._labelling.session import LabellingSession, PairView

from ..conftest import make_learner, make_tables


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=80, n_extra=20, seed=5)
    return left, right, set(true)


_learner = partial(make_learner, k=4, batch_size=5)


# ---------------------------------------------------------------- the session
def test_the_session_shows_a_batch_pair_by_pair_and_refits_on_request(tables):
    learner = _learner(tables)
    session = LabellingSession(learner)
    assert session.current is None  # no batch started yet
    assert session.next_batch()
    batch = list(session.batch)
    assert len(batch) == 5 and session.current == batch[0]
    for i, pair in enumerate(batch):
        assert session.current == pair
        session.teach(i % 2)
    assert session.current is None and session.given == batch
    assert learner.history_ == []  # refitting is the front end's call
    line = session.refit()
    assert len(learner.history_) == 1
    assert line.startswith("5 labels (2 matches, 3 non-matches, 0 unsure)")
    assert session.report_line() == line


def test_undo_shows_the_pair_again_and_leaves_older_labels_in_given(tables):
    learner = _learner(tables)
    older = learner.candidates_.iloc[-1]
    learner.teach(older.left_id, older.right_id, 0)  # before the session
    session = LabellingSession(learner)
    session.next_batch()
    first = session.current
    session.teach(1)
    assert session.undo() == first
    assert session.current == first and session.given == []
    assert not learner.is_labelled(*first)
    # A label older than the session is taken back too, and shown next.
    assert session.undo() == (older.left_id, older.right_id)
    assert session.current == (older.left_id, older.right_id) and session.given == []
    assert session.undo() is None


def test_a_session_refuses_an_unfitted_learner_before_anything():
    from skrecordpair import ActiveLearner

    with pytest.raises(AttributeError, match="not fitted yet"):
        LabellingSession(ActiveLearner())


def test_a_review_session_gives_the_listed_pairs_and_their_probability(tables):
    learner = _learner(tables, batch_size=2)
    c = learner.candidates_.iloc[[3, 1, 7]][["left_id", "right_id"]]
    session = LabellingSession(learner, c.assign(probability=[0.4, None, 0.6]))
    shown = []
    while session.next_batch():
        while session.current is not None:
            shown.append(session.current)
            session.teach(None)
    assert shown == list(zip(c.left_id, c.right_id))
    assert [session.probability(p) for p in shown] == [0.4, None, 0.6]


# ------------------------------------------------------------- the pair view
def test_the_pair_view_lists_every_field_and_marks_the_differences():
    left = pd.Series(
        {"name": " Anna Smith ", "city": "Berlin", "born": None}, name="l1"
    )
    right = pd.Series({"name": "anna smith", "city": "Paris", "zip": 10115}, name=7)
    view = PairView(left, right)
    assert (view.left_id, view.right_id) == ("l1", "7")
    assert view.rows == [
        ("name", "Anna Smith", "anna smith", True),
        ("city", "Berlin", "Paris", False),
        ("born", "", "", True),
        ("zip", "", "10115", False),
    ]


def test_the_pair_view_escapes_what_could_act_on_a_screen():
    left = pd.Series(
        {"na\x1bme": "john\u200bsmith", "note": "\u202ecba"}, name="a\x9b1"
    )
    right = pd.Series({"na\x1bme": "johnsmith", "note": "\u202ecba"}, name="b\nc")
    view = PairView(left, right)
    assert (view.left_id, view.right_id) == ("a\\x9b1", "b c")
    # The mark is computed on the values, not on what is shown of them.
    assert view.rows == [
        ("na\\x1bme", "john\\u200bsmith", "johnsmith", False),
        ("note", "\\u202ecba", "\\u202ecba", True),
    ]


# ------------------------------------------------- the pairs to review (N17)
def test_review_when_deduplicating_asks_a_pair_once_in_either_order(tables):
    from skrecordpair import ActiveLearner, NearestNeighborBlocker
    from skrecordpair._labelling.session import PairQueue

    table = tables[0]
    learner = ActiveLearner(
        NearestNeighborBlocker(k=3), batch_size=50, random_state=0
    ).fit(table)
    c = learner.candidates_.iloc[:4]
    pairs = pd.DataFrame(
        {"left_id": [*c.left_id, *c.right_id], "right_id": [*c.right_id, *c.left_id]}
    )
    queue = PairQueue(learner, pairs)
    assert queue.next_batch() == list(zip(c.left_id, c.right_id))
    assert queue.next_batch() == []


def test_review_refuses_unknown_ids_before_showing_a_pair(tables):
    from skrecordpair._labelling.session import PairQueue

    learner = _learner(tables)
    pairs = pd.DataFrame(
        {"left_id": ["l1", "zz9", "l2"], "right_id": ["r1", "r2", "q7"]}
    )
    with pytest.raises(ValueError, match=r"2 of the 3 pairs .*\(zz9, r2\), \(l2, q7\)"):
        PairQueue(learner, pairs)
    out = []
    with pytest.raises(ValueError, match="2 of the 3 pairs"):
        label_session(learner, pairs=pairs, read=lambda prompt: "m", write=out.append)
    assert out == []


def test_review_pairs_without_an_id_column_get_the_one_column_message(tables):
    from skrecordpair._labelling.session import PairQueue

    learner = _learner(tables)
    with pytest.raises(
        ValueError,
        match=r"The pairs to review must have the columns \['left_id', 'right_id'\]; "
        r"it lacks \['right_id'\]",
    ):
        PairQueue(learner, pd.DataFrame({"left_id": ["l1"], "probability": [0.5]}))
