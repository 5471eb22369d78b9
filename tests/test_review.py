"""Tests for the labelling front ends: the terminal session, the ``label``
command, the review of scored pairs and recordlinkage's annotation files."""

import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from recordlinkage.annotation import read_annotation_file as rl_read

from skrecordpair import (
    label_session,
    read_annotation_file,
    read_labels,
    write_annotation_file,
)
from skrecordpair._review import format_pair

from .conftest import make_learner, make_tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=80, n_extra=20, seed=5)
    return left, right, set(true)


_learner = partial(make_learner, k=4, batch_size=5)


class Labeller:
    """Scripted key presses: the truth for each shown pair, or given keys."""

    def __init__(self, truth, script=()):
        self.truth, self.script, self.shown, self.out = truth, list(script), [], []

    def write(self, text):
        self.out.append(text)

    def read(self, prompt):
        if self.script:
            return self.script.pop(0)
        # The pair on screen: its ids are on the header line of the table.
        header = next(t for t in reversed(self.out) if "left " in t).splitlines()[0]
        left_id = header.split("left ")[1].split()[0]
        right_id = header.split("right ")[1].strip()
        self.shown.append((left_id, right_id))
        return "m" if (left_id, right_id) in self.truth else "n"


def test_format_pair_marks_the_fields_that_differ():
    left = pd.Series({"name": "Anna Smith", "city": "Berlin", "born": None}, name="l1")
    right = pd.Series({"name": "anna smith", "city": "Paris", "born": "1980"},
                      name="r9")
    lines = format_pair(left, right).splitlines()
    assert "left l1" in lines[0] and "right r9" in lines[0]
    assert lines[1].startswith("  name")  # equal but for case
    assert lines[2].startswith("* city") and "Berlin" in lines[2] and "Paris" in lines[2]
    assert lines[3].startswith("* born")
    assert "\033[" in format_pair(left, right, color=True)


def test_a_scripted_session_of_20_pairs(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    labeller = Labeller(tables[2])
    start = time.perf_counter()
    n = label_session(learner, max_labels=20, read=labeller.read,
                      write=labeller.write)
    seconds = time.perf_counter() - start
    assert n == 20
    labels = read_labels(path)
    assert len(labels) == 20
    assert list(zip(labels.left_id, labels.right_id)) == labeller.shown
    truth = [int(p in tables[2]) for p in labeller.shown]
    assert labels["label"].tolist() == truth
    # Refits between rounds only: well under a second per pair.
    assert seconds / 20 < 1.0
    assert sum("labels (" in t for t in labeller.out) == 4  # one report per round


def test_undo_unsure_help_and_quit(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    labeller = Labeller(tables[2], script=["b", "m", "b", "x", "u", "n", "q"])
    n = label_session(learner, read=labeller.read, write=labeller.write)
    assert "Nothing to take back." in labeller.out
    assert any(t.startswith("[m]atch") for t in labeller.out)  # help after "x"
    labels = read_labels(path)
    # m was taken back; the same pair then got u; the next one n.
    assert n == 2 and len(labels) == 2
    assert pd.isna(labels["label"][0]) and labels["label"][1] == 0


def test_review_labels_the_given_pairs_and_they_are_trained_on(tables, tmp_path):
    learner = _learner(tables, labels=tmp_path / "labels.csv")
    c = learner.candidates_
    pairs = c.iloc[[3, 1, 7]][["left_id", "right_id"]].assign(probability=0.5)
    labeller = Labeller(tables[2])
    assert label_session(learner, pairs=pairs, read=labeller.read,
                         write=labeller.write) == 3
    assert labeller.shown == list(zip(pairs.left_id, pairs.right_id))
    X, _ = learner.training_pairs()
    assert list(X.index) == labeller.shown
    assert "Nothing left to label." in labeller.out


def _cli(tmp_path, *args):
    return [sys.executable, "-m", "skrecordpair", "label",
            str(tmp_path / "left.csv"), str(tmp_path / "right.csv"),
            "--labels", str(tmp_path / "labels.csv"), "--k", "4", "--batch-size", "5",
            *args]


def _write_tables(tables, tmp_path):
    left, right, _ = tables
    left.rename_axis("id").to_csv(tmp_path / "left.csv")
    right.rename_axis("id").to_csv(tmp_path / "right.csv")


def test_a_killed_session_resumes_from_its_file(tables, tmp_path):
    _write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    labels = tmp_path / "labels.csv"
    process = subprocess.Popen(_cli(tmp_path), stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, env=env, cwd=tmp_path)
    process.stdin.write(b"n\n" * 7)
    process.stdin.flush()  # stdin left open: the session waits for more keys
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            labels.exists() and len(labels.read_text().splitlines()) == 8):
        time.sleep(0.2)
    process.kill()
    process.wait()
    first = read_labels(labels)
    assert len(first) == 7
    done = subprocess.run(_cli(tmp_path, "--max-labels", "3"), input=b"m\n" * 3,
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    final = read_labels(labels)
    assert len(final) == 10
    pd.testing.assert_frame_equal(final.iloc[:7], first)
    assert not final[["left_id", "right_id"]].duplicated().any()


def test_annotation_file_round_trip(tables, tmp_path):
    left, right, _ = tables
    learner = _learner(tables)
    pairs = learner.propose(6)
    labels = [1, 0, None, 1, 0, None]
    path = tmp_path / "annotation.json"
    write_annotation_file(path, pairs, left, right, labels=labels,
                          left_name="people", right_name="copies")
    # recordlinkage reads it: the links and distinct pairs are ours.
    result = rl_read(path)
    assert list(result.links) == [tuple(pairs.iloc[i, :2]) for i in (0, 3)]
    assert list(result.distinct) == [tuple(pairs.iloc[i, :2]) for i in (1, 4)]
    back = read_annotation_file(path)
    assert back[["left_id", "right_id"]].values.tolist() == \
        pairs[["left_id", "right_id"]].values.tolist()
    assert back["label"].tolist() == [1, 0, pd.NA, 1, 0, pd.NA]
    learner.teach_many(back.dropna())
    assert learner.report()["n_labels"] == 4
    assert learner.report()["n_unsure"] == 0


def test_the_label_command_exports_and_imports_annotations(tables, tmp_path):
    _write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    path = tmp_path / "annotation.json"
    done = subprocess.run(_cli(tmp_path, "--export-annotations", str(path)),
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    back = read_annotation_file(path)
    assert len(back) == 5 and back["label"].isna().all()
    back["label"] = [int(p in tables[2]) for p in zip(back.left_id, back.right_id)]
    write_annotation_file(path, back, tables[0], tables[1], labels=back["label"])
    done = subprocess.run(_cli(tmp_path, "--import-annotations", str(path),
                               "--max-labels", "0"),
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    labels = read_labels(tmp_path / "labels.csv")
    assert labels["label"].tolist() == back["label"].tolist()


def _annotation(tmp_path, pairs, **extra):
    content = {"version": 1, "pairs": [
        {"identifiers": {"a": {"dataset": None, "record": a},
                         "b": {"dataset": None, "record": b}},
         "fields": [], "label": label} for a, b, label in pairs]}
    content.update(extra)
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps(content))
    return path


def test_an_annotation_import_with_an_unknown_id_writes_nothing(tables, tmp_path):
    labels = tmp_path / "labels.csv"
    learner = _learner(tables, labels=labels)
    path = _annotation(tmp_path, [("l0", "r0", 1), ("l1", "r1", 0),
                                  ("l2", "nobody", 1)])
    with pytest.raises(ValueError, match=r"row 2: the pair \('l2', 'nobody'\)"):
        learner.teach_many(read_annotation_file(path).dropna())
    assert len(learner.labels_) == 0
    assert labels.read_text() == "left_id,right_id,label\n"
    # The command refuses it the same way, before the session starts.
    _write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_cli(tmp_path, "--import-annotations", str(path),
                               "--max-labels", "0"),
                          capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode != 0 and b"nobody" in done.stderr
    assert labels.read_text() == "left_id,right_id,label\n"


def test_a_bad_annotation_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "annotation.json"
    good = {"identifiers": {"a": {"record": "l1"}, "b": {"record": "r1"}}, "label": 1}
    cases = [
        ({"version": 1, "pairs": [good, {"identifiers": {"a": {"record": "l2"}}}]},
         r"Pair 1 of the annotation file .* lacks identifiers.b "),
        ({"version": 1, "pairs": [{"identifiers": {"a": {}, "b": {"record": 2}}}]},
         r"Pair 0 .* lacks identifiers.a.record"),
        ({"version": 99, "pairs": [good]}, r"is of version 99; this reader knows "
                                           r"version 1"),
        ({"pairs": [good]}, r"is of version None"),
        ({"version": 1}, r"must hold a list 'pairs'; got none"),
        ([good], r"must hold a JSON object .* holds a list"),
        ({"version": 1, "pairs": [{**good, "label": 2}]}, r"must be 0 or 1 .* pair 0 "
                                                          r"holds 2"),
        ({"version": 1, "pairs": [{**good, "identifiers": {
            "a": {"record": ["l1"]}, "b": {"record": "r1"}}}]},
         r"identifiers.a.record must be a text or a number; got \['l1'\]"),
    ]
    for content, message in cases:
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=message):
            read_annotation_file(path)
    path.write_text('{"version": 1, "pairs": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        read_annotation_file(path)
    path.write_bytes(b'{"version": 1, "pairs": [], "x": "\xff"}')
    with pytest.raises(ValueError, match=r"annotation.json' must be UTF-8 text"):
        read_annotation_file(path)
    path.write_text('{"version": 1, "pairs": [')
    with pytest.raises(ValueError, match=r"annotation.json' is not JSON"):
        read_annotation_file(path)
