"""Tests for the ``label`` command line: what it says, and how it fails."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from skrecordpair import read_labels
from skrecordpair.__main__ import main
from skrecordpair._labelling import terminal as _review

from ..conftest import make_tables
from .conftest import write_tables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables():
    left, right, true = make_tables(n=40, n_extra=10, seed=3)
    return left, right, set(true)


@pytest.fixture
def files(tables, tmp_path):
    """The two tables as CSV files with an ``id`` column."""
    write_tables(tables, tmp_path)
    return tmp_path


def _run(tmp_path, *args, keys="", monkeypatch):
    """``main`` in this process, keys from a pipe-like stdin."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(keys))
    argv = [
        "label",
        str(tmp_path / "left.csv"),
        str(tmp_path / "right.csv"),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--k",
        "3",
        "--batch-size",
        "4",
        *args,
    ]
    return main(argv)


def test_the_command_says_what_it_loaded_and_what_to_do_next(
    files, monkeypatch, capsys
):
    assert (
        _run(files, "--max-labels", "3", keys="n\nm\nn\n", monkeypatch=monkeypatch) == 0
    )
    out = capsys.readouterr().out
    assert (
        "left.csv: 40 records, fields first, last, city, born; ids: column 'id'" in out
    )
    assert "right.csv: 50 records" in out and "labels.csv: new labels file" in out
    # The slow step is announced before it runs, then timed.
    assert "Finding the 3 nearest candidates of each record (40 x 50)" in out
    assert "done in" in out and "candidate pairs." in out
    assert out.index("new labels file") < out.index("Finding") < out.index("--- pair 1")
    assert (
        f"link {files / 'left.csv'} {files / 'right.csv'} --labels "
        f"{files / 'labels.csv'} --out matches.csv" in out
    )
    _run(files, "--max-labels", "0", monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert (
        "labels.csv: 3 labels to resume from (1 matches, 2 non-matches, 0 unsure)"
        in out
    )


@pytest.mark.parametrize("case", ["no folder", "a directory", "a fifo"])
def test_a_bad_labels_path_is_one_line_before_the_slow_step(
    files, case, monkeypatch, capsys
):
    path = {
        "no folder": files / "nope" / "labels.csv",
        "a directory": files,
        "a fifo": files / "fifo.csv",
    }[case]
    if case == "a fifo":
        os.mkfifo(path)
    assert _run(files, "--labels", str(path), monkeypatch=monkeypatch) == 1
    captured = capsys.readouterr()
    assert "Finding" not in captured.out
    error = captured.err.strip()
    assert len(error.splitlines()) == 1 and error.startswith(
        "skrecordpair label: error:"
    )
    assert {
        "no folder": "does not exist",
        "a directory": "is a directory",
        "a fifo": "not a regular file",
    }[case] in error


def test_duplicate_ids_and_bad_numbers_are_one_line(files, tables, monkeypatch, capsys):
    left = tables[0].rename_axis("id").reset_index()
    left.loc[5, "id"] = left.loc[4, "id"]
    left.to_csv(files / "left.csv", index=False)
    assert _run(files, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert (
        "left.csv: the id column 'id' must name each record once; it repeats "
        "1 id(s): 'l4'" in err
    )
    for option in ("--k", "--batch-size"):
        with pytest.raises(SystemExit) as exit_:
            _run(files, option, "0", monkeypatch=monkeypatch)
        assert exit_.value.code == 2
        assert "expected an integer >= 1, got 0" in capsys.readouterr().err


def test_unknown_review_ids_fail_before_the_session(files, tables, monkeypatch, capsys):
    scored = pd.DataFrame(
        {
            "left_id": ["l1", "zzl30"],
            "right_id": ["r1", "r28"],
            "probability": [0.5, 0.5],
        }
    )
    scored.to_csv(files / "scored.csv", index=False)
    assert (
        _run(
            files,
            "--review",
            str(files / "scored.csv"),
            keys="m\n",
            monkeypatch=monkeypatch,
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "--- pair" not in captured.out
    assert (
        "1 of the 2 pairs to review name a record id that the tables do not hold"
        in captured.err
        and "(zzl30, r28)" in captured.err
    )
    assert "Traceback" not in captured.err


def test_a_review_file_listing_pairs_twice_asks_them_once(files, monkeypatch, capsys):
    pairs = [("l1", "r1"), ("l2", "r2"), ("l3", "r3")]
    scored = pd.DataFrame(pairs * 2, columns=["left_id", "right_id"]).assign(
        probability=0.5
    )
    scored.to_csv(files / "scored.csv", index=False)
    assert (
        _run(
            files,
            "--review",
            str(files / "scored.csv"),
            keys="m\n" * 6,
            monkeypatch=monkeypatch,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "3 pairs of" in out and "3 listed more than once are asked once" in out
    assert out.count("--- pair") == 3
    assert len(read_labels(files / "labels.csv")) == 3


def test_ctrl_c_in_the_session_keeps_the_labels_and_says_so(files, monkeypatch, capsys):
    keys = iter(["n", "m"])

    def read_key(prompt=""):
        try:
            return next(keys)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(_review, "read_key", read_key)
    assert _run(files, monkeypatch=monkeypatch) == 130
    out = capsys.readouterr().out
    assert "Interrupted: 2 labels given in this session; 2 labels are in" in out
    assert "skrecordpair link" in out
    assert len(read_labels(files / "labels.csv")) == 2


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_exit_status_130(files):
    """A real SIGINT to the command waiting for a key: no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    labels = files / "labels.csv"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skrecordpair",
            "label",
            str(files / "left.csv"),
            str(files / "right.csv"),
            "--labels",
            str(labels),
            "--k",
            "3",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # A suite started in the background (nohup, `&`) passes SIGINT on
        # ignored, and Python keeps it ignored; a terminal's Ctrl-C is not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    process.stdin.write(b"n\n")
    process.stdin.flush()  # left open: the session waits for the next key
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        labels.exists() and len(labels.read_text().splitlines()) == 2
    ):
        time.sleep(0.2)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert b"Interrupted: 1 labels given in this session" in out


def test_row_number_ids_are_announced_and_resuming_them_needs_row_ids(
    tables, tmp_path, monkeypatch, capsys
):
    left, right, _ = tables
    left.to_csv(tmp_path / "left.csv", index=False)  # no id column
    right.to_csv(tmp_path / "right.csv", index=False)
    assert (
        _run(tmp_path, "--max-labels", "2", keys="n\nn\n", monkeypatch=monkeypatch) == 0
    )
    out = capsys.readouterr().out
    assert "ids: row numbers" in out
    assert "has no 'id' column; its records are named by row number" in out
    # Sorted since: resuming silently would move every label to other records.
    left.sort_values("last").to_csv(tmp_path / "left.csv", index=False)
    assert _run(tmp_path, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert "holds 2 labels" in err and "--row-ids" in err
    assert (
        _run(tmp_path, "--row-ids", "--max-labels", "0", monkeypatch=monkeypatch) == 0
    )
    assert "2 labels to resume from" in capsys.readouterr().out
