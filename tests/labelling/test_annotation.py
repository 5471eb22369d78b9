"""Tests for recordlinkage's annotation files: written for its annotator, read
back checked, imported and exported by the ``label`` command."""

import json
import os
import subprocess
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from recordlinkage.annotation import read_annotation_file as rl_read

from skrecordpair import read_annotation_file, read_labels, write_annotation_file

from ..conftest import make_learner, make_tables
from .conftest import label_command, write_tables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=80, n_extra=20, seed=5)
    return left, right, set(true)


_learner = partial(make_learner, k=4, batch_size=5)


def test_annotation_file_round_trip(tables, tmp_path):
    left, right, _ = tables
    learner = _learner(tables)
    pairs = learner.propose(6)
    labels = [1, 0, None, 1, 0, None]
    path = tmp_path / "annotation.json"
    write_annotation_file(
        path, pairs, left, right, labels=labels, left_name="people", right_name="copies"
    )
    # recordlinkage reads it: the links and distinct pairs are ours.
    result = rl_read(path)
    assert list(result.links) == [tuple(pairs.iloc[i, :2]) for i in (0, 3)]
    assert list(result.distinct) == [tuple(pairs.iloc[i, :2]) for i in (1, 4)]
    back = read_annotation_file(path)
    assert (
        back[["left_id", "right_id"]].values.tolist()
        == pairs[["left_id", "right_id"]].values.tolist()
    )
    assert back["label"].tolist() == [1, 0, pd.NA, 1, 0, pd.NA]
    learner.teach_many(back.dropna())
    assert learner.report()["n_labels"] == 4
    assert learner.report()["n_unsure"] == 0


@pytest.mark.slow
def test_the_label_command_exports_and_imports_annotations(tables, tmp_path):
    write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    path = tmp_path / "annotation.json"
    done = subprocess.run(
        label_command(tmp_path, "--export-annotations", str(path)),
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    back = read_annotation_file(path)
    assert len(back) == 5 and back["label"].isna().all()
    back["label"] = [int(p in tables[2]) for p in zip(back.left_id, back.right_id)]
    write_annotation_file(path, back, tables[0], tables[1], labels=back["label"])
    done = subprocess.run(
        label_command(tmp_path, "--import-annotations", str(path), "--max-labels", "0"),
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    labels = read_labels(tmp_path / "labels.csv")
    assert labels["label"].tolist() == back["label"].tolist()


def _annotation(tmp_path, pairs, **extra):
    content = {
        "version": 1,
        "pairs": [
            {
                "identifiers": {
                    "a": {"dataset": None, "record": a},
                    "b": {"dataset": None, "record": b},
                },
                "fields": [],
                "label": label,
            }
            for a, b, label in pairs
        ],
    }
    content.update(extra)
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps(content))
    return path


@pytest.mark.slow
def test_an_annotation_import_with_an_unknown_id_writes_nothing(tables, tmp_path):
    labels = tmp_path / "labels.csv"
    learner = _learner(tables, labels=labels)
    path = _annotation(
        tmp_path, [("l0", "r0", 1), ("l1", "r1", 0), ("l2", "nobody", 1)]
    )
    with pytest.raises(ValueError, match=r"row 2: the pair \('l2', 'nobody'\)"):
        learner.teach_many(read_annotation_file(path).dropna())
    assert len(learner.labels_) == 0
    assert labels.read_text() == "left_id,right_id,label\n"
    # The command refuses it the same way, before the session starts.
    write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        label_command(tmp_path, "--import-annotations", str(path), "--max-labels", "0"),
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0 and b"nobody" in done.stderr
    assert labels.read_text() == "left_id,right_id,label\n"


def test_a_bad_annotation_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "annotation.json"
    good = {"identifiers": {"a": {"record": "l1"}, "b": {"record": "r1"}}, "label": 1}
    cases = [
        (
            {"version": 1, "pairs": [good, {"identifiers": {"a": {"record": "l2"}}}]},
            r"Pair 1 of the annotation file .* lacks identifiers.b ",
        ),
        (
            {"version": 1, "pairs": [{"identifiers": {"a": {}, "b": {"record": 2}}}]},
            r"Pair 0 .* lacks identifiers.a.record",
        ),
        (
            {"version": 99, "pairs": [good]},
            r"is of version 99; this reader knows "
            r"version 1",
        ),
        ({"pairs": [good]}, r"is of version None"),
        ({"version": 1}, r"must hold a list 'pairs'; got none"),
        ([good], r"must hold a JSON object .* holds a list"),
        (
            {"version": 1, "pairs": [{**good, "label": 2}]},
            r"must be 0 or 1 .* pair 0 "
            r"holds 2",
        ),
        (
            {
                "version": 1,
                "pairs": [
                    {
                        **good,
                        "identifiers": {"a": {"record": ["l1"]}, "b": {"record": "r1"}},
                    }
                ],
            },
            r"identifiers.a.record must be a text or a number; got \['l1'\]",
        ),
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
