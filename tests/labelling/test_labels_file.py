"""Tests for the labels file: written through as labels are given, read back
as a log (the last line of a pair counts, undo lines take labels back),
shared by two learners, and refused with a clear message when malformed."""

import os
import signal
import threading
from functools import partial

import pandas as pd
import pytest

from skrecordpair import ActiveLearner, NearestNeighborBlocker, read_labels

from ..conftest import make_learner, make_tables


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=80, n_extra=20, seed=3)
    return left, right, set(true)


_learner = partial(make_learner, k=4, batch_size=10)


def test_labels_are_on_disk_after_each_teach_and_a_new_learner_resumes(
    tables, tmp_path
):
    path = tmp_path / "labels.csv"
    truth = tables[2]
    learner = _learner(tables, labels=path)
    assert path.read_text() == "left_id,right_id,label\n"
    batch = learner.propose()
    for i, (a, b) in enumerate(zip(batch.left_id, batch.right_id)):
        learner.teach(a, b, int((a, b) in truth))
        # Written through at once, as a killed session would leave it.
        assert len(read_labels(path)) == i + 1
    resumed = _learner(tables, labels=path)
    pd.testing.assert_frame_equal(resumed.labels_, learner.labels_)
    new = resumed.propose()
    assert not set(zip(new.left_id, new.right_id)) & set(
        zip(batch.left_id, batch.right_id)
    )


def test_a_hand_edited_file_counts_its_last_line_and_unsure(tables, tmp_path):
    truth = tables[2]
    a, b = sorted(truth)[0]
    path = tmp_path / "labels.csv"
    path.write_text(f"left_id,right_id,label\n{a},{b},0\n{a},{b},match\nl1,r1,unsure\n")
    learner = _learner(tables, labels=path)
    labels = learner.labels_.set_index(["left_id", "right_id"])["label"]
    assert labels[(a, b)] == 1
    assert pd.isna(labels[("l1", "r1")])
    assert learner.report()["n_unsure"] == 1
    X, y = learner.training_pairs()
    assert list(X.index) == [(a, b)] and list(y) == [1]
    assert X.index.names == ["left_id", "right_id"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("left_id,right_id,label\nl0,r0,maybe\n", "must be 1, 0 or unsure"),
        ("left_id,right,label\nl0,r0,1\n", "lacks \\['right_id'\\]"),
        ("left_id,right_id,label\nnobody,r0,1\n", "names a record id"),
    ],
)
def test_a_bad_labels_file_is_refused(tables, tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        _learner(tables, labels=path)


def test_undo_takes_the_last_label_back_from_the_file(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    learner.teach("l0", "r0", 1).teach("l1", "r1", 0)
    assert learner.undo() == ("l1", "r1")
    assert read_labels(path)[["left_id", "right_id"]].values.tolist() == [["l0", "r0"]]
    assert learner.labels_[["left_id", "right_id"]].values.tolist() == [["l0", "r0"]]
    assert learner.undo() == ("l0", "r0")
    assert learner.undo() is None
    # Nothing is cut: the file is a log, and undo lines take the labels back.
    assert path.read_text().splitlines() == [
        "left_id,right_id,label",
        "l0,r0,1",
        "l1,r1,0",
        "l1,r1,undo 0",
        "l0,r0,undo 1",
    ]
    assert len(read_labels(path)) == 0
    assert len(_learner(tables, labels=path).labels_) == 0


def test_undo_brings_back_the_label_a_correction_replaced(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    learner.teach("l0", "r0", 1).teach("l1", "r1", 0).teach("l0", "r0", 0)
    assert learner.undo() == ("l0", "r0")
    expected = [["l0", "r0", 1], ["l1", "r1", 0]]
    assert learner.labels_.values.tolist() == expected
    assert _learner(tables, labels=path).labels_.values.tolist() == expected
    # The next undo takes back the label given before the correction.
    assert learner.undo() == ("l1", "r1")
    assert learner.labels_.values.tolist() == [["l0", "r0", 1]]
    assert _learner(tables, labels=path).labels_.values.tolist() == [["l0", "r0", 1]]


@pytest.mark.parametrize(
    "content",
    [
        "left_id,right_id,label",  # a header saved without its final newline
        "left_id,right_id,label\r\nl3,r3,1",  # a label line without it
    ],
)
def test_an_append_starts_on_a_line_of_its_own(tables, tmp_path, content):
    path = tmp_path / "labels.csv"
    path.write_bytes(content.encode())
    before = [] if "l3" not in content else [["l3", "r3", 1]]
    _learner(tables, labels=path).teach("l5", "r9", 0).teach("l6", "r6", None)
    resumed = _learner(tables, labels=path).labels_
    assert resumed.astype(object).values.tolist() == [
        *before,
        ["l5", "r9", 0],
        ["l6", "r6", pd.NA],
    ]


def test_an_append_follows_the_column_order_of_a_hand_made_header(tables, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("right_id,note,left_id,label\nr3,looks right,l3,1\n")
    _learner(tables, labels=path).teach("l5", "r9", 0)
    assert path.read_text().splitlines()[-1] == "r9,,l5,0"
    resumed = _learner(tables, labels=path).labels_
    assert resumed.values.tolist() == [["l3", "r3", 1], ["l5", "r9", 0]]


def test_an_append_after_an_integer_id_does_not_make_another_pair(tmp_path):
    # Integer ids (the CLI's without an id column): "3,3,1" then "5,9,0" merged
    # into "3,3,15,9,0" read as pair (15, 9) = 0, both labels lost.
    left, right, _ = make_tables(n=20, n_extra=0, seed=1)
    left, right = left.reset_index(drop=True), right.reset_index(drop=True)
    path = tmp_path / "labels.csv"
    path.write_text("left_id,right_id,label\n3,3,1")
    learner = ActiveLearner(NearestNeighborBlocker(k=3), labels=path).fit(left, right)
    learner.teach(5, 9, 0)
    resumed = ActiveLearner(NearestNeighborBlocker(k=3), labels=path).fit(left, right)
    assert resumed.labels_.values.tolist() == [[3, 3, 1], [5, 9, 0]]


def test_undo_keeps_a_line_added_by_hand_meanwhile(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    learner.teach("l0", "r0", 1)
    with open(path, "a") as f:
        f.write("l5,r5,1\n")
    assert learner.undo() == ("l0", "r0")
    assert not learner.is_labelled("l0", "r0")
    assert read_labels(path).values.tolist() == [["l5", "r5", 1]]
    assert _learner(tables, labels=path).labels_.values.tolist() == [["l5", "r5", 1]]


def test_two_learners_writing_into_one_file_lose_nothing(tables, tmp_path):
    path = tmp_path / "labels.csv"
    a, b = _learner(tables, labels=path), _learner(tables, labels=path)
    a.teach("l0", "r0", 1)
    b.teach("l1", "r1", 0)
    a.undo()  # takes back l0-r0, not b's line below it
    a.teach("l2", "r2", 1)
    b.teach("l0", "r0", 0)  # b labels the pair a took back
    b.teach("l3", "r3", 1)
    a.teach("l4", "r4", 0)
    b.undo()  # l3-r3
    a.teach("l1", "r1", 1)  # a labels b's pair; b then takes its own label back
    b.undo()  # b's l0-r0 = 0
    b.undo()  # b's l1-r1 = 0: a's label of that pair stays
    assert a.labels_.values.tolist() == [
        ["l2", "r2", 1],
        ["l4", "r4", 0],
        ["l1", "r1", 1],
    ]
    assert b.labels_.values.tolist() == []
    resumed = _learner(tables, labels=path).labels_
    assert resumed.values.tolist() == [
        ["l2", "r2", 1],
        ["l4", "r4", 0],
        ["l1", "r1", 1],
    ]


def test_two_learners_in_threads_lose_nothing(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learners = [_learner(tables, labels=path), _learner(tables, labels=path)]
    barrier = threading.Barrier(2)

    def work(learner, side):
        barrier.wait()
        for i in range(120):
            # Disjoint pairs: side 0 labels left records l0.., side 1 l40..
            learner.teach(f"l{side * 40 + i % 40}", f"r{i % 100}", i % 2)
            if i % 3 == 2:
                learner.undo()

    threads = [
        threading.Thread(target=work, args=(learner, side))
        for side, learner in enumerate(learners)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = pd.concat([learner.labels_ for learner in learners])
    resumed = _learner(tables, labels=path).labels_
    key = ["left_id", "right_id"]
    assert len(expected) == 160
    pd.testing.assert_frame_equal(
        resumed.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )


def test_hand_written_undo_lines_are_replayed(tables, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "left_id,right_id,label\nl0,r0,1\nl1,r1,0\nl0,r0,0\n"
        "l0,r0,UNDO\nl1,r1,undo 1\nl2,r2,undo\n"
    )
    # A plain undo takes back the pair's latest label; "undo 1" finds no 1 for
    # l1-r1 and an undo of an unlabelled pair does nothing.
    expected = [["l0", "r0", 1], ["l1", "r1", 0]]
    assert read_labels(path).values.tolist() == expected
    assert _learner(tables, labels=path).labels_.values.tolist() == expected


def test_undo_lines_match_a_deduplication_pair_in_either_order(tables, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("left_id,right_id,label\nl2,l5,1\nl5,l2,undo 1\n")
    learner = ActiveLearner(NearestNeighborBlocker(k=3), labels=path).fit(tables[0])
    assert not learner.is_labelled("l2", "l5")


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not hasattr(signal, "alarm"),
    reason="FIFOs and alarms are POSIX only",
)
def test_a_fifo_at_the_labels_path_is_refused_not_waited_on(tables, tmp_path):
    path = tmp_path / "labels.csv"
    os.mkfifo(path)

    def hung(signum, frame):
        raise TimeoutError("fit() waited on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(ValueError, match="must be a regular file; it is a FIFO"):
            _learner(tables, labels=path)
        with pytest.raises(ValueError, match="must be a regular file; it is a FIFO"):
            read_labels(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_directory_or_device_at_the_labels_path_is_refused(tables, tmp_path):
    with pytest.raises(ValueError, match="must be a regular file; it is a directory"):
        _learner(tables, labels=tmp_path)
    if os.path.exists(os.devnull) and hasattr(os, "symlink"):
        link = tmp_path / "labels.csv"
        link.symlink_to(os.devnull)
        with pytest.raises(ValueError, match="it is a character device"):
            _learner(tables, labels=link)


def test_a_labels_file_that_is_not_utf8_is_refused_naming_it(tables, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"left_id,right_id,label\nl0,r0,1\nl1,r\xc41,0\n")
    with pytest.raises(
        ValueError,
        match=r"labels.csv' must be UTF-8 text; line 3 "
        r"holds the byte b'\\xc4'",
    ):
        _learner(tables, labels=path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("l0,r58,", r"an empty label.*Line\(s\) \[3\] hold \[''\]"),
        ("l0,r58", r"Line 3 .* is cut short.*lacks \['label'\]"),
        ("l0,r5,1,extra", r"Line 3 .* has 4 fields; its header has 3"),
        ("l0,r5,undo maybe", r"Line\(s\) \[3\] hold \['undo maybe'\]"),
    ],
)
def test_a_line_cut_short_or_too_long_is_refused_naming_it(
    tables, tmp_path, line, message
):
    path = tmp_path / "labels.csv"
    path.write_text(f"left_id,right_id,label\nl1,r1,1\n{line}\n")
    with pytest.raises(ValueError, match=message):
        _learner(tables, labels=path)


def test_a_huge_id_is_shortened_in_the_error(tables, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(f"left_id,right_id,label\nl1,r1,1\n{'x' * 100_000},r1,1\n")
    with pytest.raises(ValueError, match="line 3: the pair") as error:
        _learner(tables, labels=path)
    assert len(str(error.value)) < 500
    assert "(100000 characters)" in str(error.value)
    # Beyond the csv module's field limit: refused, naming the line.
    path.write_text(f"left_id,right_id,label\nl1,r1,1\n{'x' * 5_000_000},r1,1\n")
    with pytest.raises(ValueError, match="Line 3 .* cannot be read") as error:
        _learner(tables, labels=path)
    assert len(str(error.value)) < 500
    learner = _learner(tables)
    with pytest.raises(ValueError) as error:
        learner.teach("l1", "y" * 5_000_000, 1)
    assert len(str(error.value)) < 500
    with pytest.raises(ValueError) as error:
        learner.teach("l1", "r1", "z" * 5_000_000)
    assert len(str(error.value)) < 500


def test_a_labels_file_deleted_during_a_session_is_recreated_with_its_header(
    tables, tmp_path
):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    learner.teach("l0", "r0", 1)
    path.unlink()
    learner.teach("l1", "r1", 0)
    assert path.read_text().splitlines() == ["left_id,right_id,label", "l1,r1,0"]
    assert _learner(tables, labels=path).labels_.values.tolist() == [["l1", "r1", 0]]
