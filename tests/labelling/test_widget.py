"""Tests for the notebook labelling widget, driven through its model: the
buttons' click handlers, no browser."""

from functools import partial

import pandas as pd
import pytest

from skrecordpair import LabelWidget, read_labels
from skrecordpair._labelling.widget import pair_html

from ..conftest import make_learner, make_tables

pytest.importorskip(
    "ipywidgets", reason="the widget needs the optional extra 'widgets'"
)


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=60, n_extra=10, seed=7)
    return left, right, set(true)


_learner = partial(make_learner, k=3, batch_size=4)


def _click_truth(widget, truth):
    pair = widget.current
    button = widget.match_button if pair in truth else widget.non_match_button
    button.click()
    return pair


def test_clicks_label_the_shown_pairs_and_refit_between_batches(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    widget = LabelWidget(learner, target=12)
    assert widget.undo_button.disabled and not widget.match_button.disabled
    shown = [_click_truth(widget, tables[2]) for _ in range(3)]
    # Within a batch: no refit yet; the file already holds every label.
    assert learner.history_ == []
    assert list(zip(read_labels(path).left_id, read_labels(path).right_id)) == [
        tuple(map(str, p)) for p in shown
    ]
    shown.append(_click_truth(widget, tables[2]))
    assert len(learner.history_) == 1  # the batch of 4 is done: one refit
    assert widget.progress.value == 4 and widget.progress.max == 12
    assert "4 labels" in widget.status.value
    assert learner.labels_["label"].tolist() == [int(p in tables[2]) for p in shown]
    assert widget.given == shown and not widget.undo_button.disabled


def test_unsure_and_undo(tables):
    learner = _learner(tables)
    widget = LabelWidget(learner)
    first = widget.current
    widget.unsure_button.click()
    assert learner.is_labelled(*first) and learner.report()["n_unsure"] == 1
    second = widget.current
    assert second != first
    widget.match_button.click()
    widget.undo_button.click()  # takes the match back, shows its pair again
    assert widget.current == second and not learner.is_labelled(*second)
    assert "Took back" in widget.status.value
    widget.undo_button.click()
    assert widget.current == first and learner.labels_.empty
    widget.undo_button.click()  # nothing left to take back
    assert "Nothing to take back" in widget.status.value
    assert widget.undo_button.disabled


def test_the_record_view_shows_both_records_and_highlights_differences(tables):
    learner = _learner(tables)
    widget = LabelWidget(learner)
    left_id, right_id = widget.current
    view = widget.record_view.value
    assert f"left {left_id}" in view and f"right {right_id}" in view
    left = pd.Series({"name": "anna <b>", "city": "oslo"}, name="l1")
    right = pd.Series({"name": "anna <b>", "city": "bergen"}, name="r1")
    rows = pair_html(left, right).split("<tr")
    assert "background" not in next(r for r in rows if ">name<" in r)
    assert "background" in next(r for r in rows if ">city<" in r)
    assert "&lt;b&gt;" in pair_html(left, right)  # values are escaped


def test_review_pairs_until_none_is_left(tables):
    learner = _learner(tables, batch_size=2)
    pairs = learner.candidates_.iloc[:3][["left_id", "right_id"]]
    learner.teach(pairs.left_id.iloc[0], pairs.right_id.iloc[0], 0)
    widget = LabelWidget(learner, pairs=pairs)
    for _ in range(2):
        widget.non_match_button.click()
    assert widget.current is None and widget.match_button.disabled
    assert "Nothing left" in widget.record_view.value
    assert learner.report()["n_labels"] == 3
    widget.match_button.click()  # a stray click does nothing
    assert learner.report()["n_labels"] == 3


def test_bad_pairs_are_refused(tables):
    with pytest.raises(ValueError, match="lacks"):
        LabelWidget(_learner(tables), pairs=pd.DataFrame({"left_id": [1]}))
