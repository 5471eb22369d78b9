"""Tests for the terminal labelling session: scripted keys, undo, a killed
session resumed from its file, what reaches the terminal, the layout, and the
review of scored pairs."""

import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from skrecordpair import label_session, read_labels
from skrecordpair._labelling.terminal import format_pair

from ..conftest import make_learner, make_tables
from .conftest import label_command, write_tables

ROOT = Path(__file__).resolve().parents[2]


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
    right = pd.Series(
        {"name": "anna smith", "city": "Paris", "born": "1980"}, name="r9"
    )
    lines = format_pair(left, right).splitlines()
    assert "left l1" in lines[0] and "right r9" in lines[0]
    assert lines[1].startswith("  name")  # equal but for case
    assert (
        lines[2].startswith("* city") and "Berlin" in lines[2] and "Paris" in lines[2]
    )
    assert lines[3].startswith("* born")
    assert "\033[" in format_pair(left, right, color=True)


def test_a_scripted_session_of_20_pairs(tables, tmp_path):
    path = tmp_path / "labels.csv"
    learner = _learner(tables, labels=path)
    labeller = Labeller(tables[2])
    start = time.perf_counter()
    n = label_session(learner, max_labels=20, read=labeller.read, write=labeller.write)
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
    assert (
        label_session(learner, pairs=pairs, read=labeller.read, write=labeller.write)
        == 3
    )
    assert labeller.shown == list(zip(pairs.left_id, pairs.right_id))
    X, _ = learner.training_pairs()
    assert list(X.index) == labeller.shown
    assert "Nothing left to label." in labeller.out


@pytest.mark.slow
def test_a_killed_session_resumes_from_its_file(tables, tmp_path):
    write_tables(tables, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    labels = tmp_path / "labels.csv"
    process = subprocess.Popen(
        label_command(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    process.stdin.write(b"n\n" * 7)
    process.stdin.flush()  # stdin left open: the session waits for more keys
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        labels.exists() and len(labels.read_text().splitlines()) == 8
    ):
        time.sleep(0.2)
    process.kill()
    process.wait()
    first = read_labels(labels)
    assert len(first) == 7
    done = subprocess.run(
        label_command(tmp_path, "--max-labels", "3"),
        input=b"m\n" * 3,
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    final = read_labels(labels)
    assert len(final) == 10
    pd.testing.assert_frame_equal(final.iloc[:7], first)
    assert not final[["left_id", "right_id"]].duplicated().any()


# ------------------------------------------- what reaches the terminal (N6)
_ATTACK = "evil corp\x1b[1G \x1b[47Gjohn smith\x1b[K"  # redraws its row as "john smith"


def test_format_pair_shows_control_characters_as_escapes():
    left = pd.Series({"name": "john smith", "city": "berlin", "note": "abc"}, name="a1")
    right = pd.Series(
        {
            "name": _ATTACK,
            "city": "berlin\x1b]0;PWNED\x07",
            "note": "\u202ecba",
            "na\x1bme": "x",
        },
        name="b\x9b1",
    )
    for columns in (None, 30, 100):
        text = format_pair(left, right, columns=columns)
        # Nothing reaches the terminal that it would act on: no C0/C1 control
        # but the line breaks, no bidi override.
        assert not [
            c
            for c in text
            if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"
        ]
        assert "\\x1b" in text and "\\u202e" in text and "\\x9b" in text
    lines = format_pair(left, right, width=60).splitlines()
    assert lines[1].startswith("* name") and "evil corp\\x1b[1G" in lines[1]
    assert lines[2].startswith("* city") and "\\x1b]0;PWNED\\x07" in lines[2]
    assert lines[3].startswith("* note") and "\\u202ecba" in lines[3]
    assert lines[4].startswith("* na\\x1bme")
    assert "right b\\x9b1" in lines[0]


def test_the_difference_mark_is_computed_on_the_values_not_on_what_is_shown():
    # Values that look alike once cut short, or only differ by an invisible
    # character, are still marked different; case and outer spaces are not.
    left = pd.Series({"a": "x" * 50 + "1", "b": "john\u200bsmith", "c": " Anna "})
    right = pd.Series({"a": "x" * 50 + "2", "b": "johnsmith", "c": "anna"})
    lines = format_pair(left, right, width=20).splitlines()
    assert [line[0] for line in lines[1:]] == ["*", "*", " "]
    assert "\\u200b" in lines[2]


def test_pair_html_escapes_markup_and_shows_control_characters():
    from skrecordpair._labelling.widget import pair_html

    left = pd.Series({"name": "<b>john</b>", "city": "berlin"}, name="<i>a1")
    right = pd.Series({"name": "\u202enhoj", "city": "berlin\x1b[K"}, name="b1")
    page = pair_html(left, right)
    assert "<b>john" not in page and "&lt;b&gt;john&lt;/b&gt;" in page
    assert "&lt;i&gt;a1" in page
    assert "\u202e" not in page and "\x1b" not in page
    assert "\\u202enhoj" in page and "berlin\\x1b[K" in page
    assert page.count("background-color") == 2  # both rows differ


# ----------------------------------------------------- layout (N18)
def _display_width(text):
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_wide_characters_keep_the_columns_aligned():
    left = pd.Series(
        {"name": "東京 太郎", "city": "😀 smile", "zip": "10115"}, name="l1"
    )
    right = pd.Series(
        {"name": "tokyo taro", "city": "smile", "zip": "10115"}, name="r1"
    )
    lines = format_pair(left, right, width=12).splitlines()
    # The right value starts at the same display column on every line.
    starts = {
        _display_width(line[: line.rindex(value)])
        for line, value in zip(lines, ["right r1", "tokyo taro", "smile", "10115"])
    }
    assert len(starts) == 1
    # Cutting counts display columns too: 8 CJK characters fill 16 columns.
    cut = format_pair(pd.Series({"f": "東" * 20}), pd.Series({"f": "x"}), width=9)
    assert cut.splitlines()[1].split("  ")[1].strip() == "東東東東…"


@pytest.mark.parametrize("columns", [20, 40, 60, 100, 200])
def test_the_pair_fits_the_terminal(columns):
    left = pd.Series(
        {"a_rather_long_field_name": "x" * 300, "city": "東京" * 50}, name="l1"
    )
    right = pd.Series(
        {"a_rather_long_field_name": "y" * 300, "city": "berlin"}, name="r1"
    )
    lines = format_pair(left, right, columns=columns).splitlines()
    assert max(_display_width(line) for line in lines) < columns
    if columns >= 100:  # a wide terminal shows more than the old 36 characters
        assert "x" * (35 if columns == 100 else 80) in lines[1]
    if columns < 48:  # narrow: one field per three lines, left then right value
        assert lines[2].startswith("* a_rather") and lines[3].startswith("  < xxx")
        assert lines[4].startswith("  > yyy")


def test_read_key_takes_an_escape_sequence_as_one_key(monkeypatch, capsys):
    """An arrow key (three bytes) or a non-ASCII letter (two bytes) is one
    key, and the escape sequence is not echoed back raw."""
    import pty
    import signal
    import termios
    import tty

    from skrecordpair._labelling import terminal as _review

    # read_key enters cbreak mode with TCSAFLUSH, which drops the keys typed
    # before the pair was shown; here the keys are all typed first.
    setcbreak = tty.setcbreak
    monkeypatch.setattr(
        tty, "setcbreak", lambda fd, when=None: setcbreak(fd, termios.TCSANOW)
    )

    def timeout(*args):
        raise TimeoutError("read_key waited for a key that was sent")

    previous = signal.signal(signal.SIGALRM, timeout)
    master, slave = pty.openpty()
    try:
        tty.setcbreak(slave)
        signal.alarm(20)
        with open(slave, closefd=False) as tty_in:
            monkeypatch.setattr(sys, "stdin", tty_in)
            os.write(master, b"\x1b[A")
            time.sleep(0.1)
            os.write(master, "é".encode() + b"m\x1bOP")
            keys = [_review.read_key("> ") for _ in range(4)]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.close(master)
        os.close(slave)
    assert keys == ["\x1b[A", "é", "m", "\x1bOP"]
    assert "\x1b" not in capsys.readouterr().out


def test_an_arrow_key_shows_the_help_once(tables, tmp_path):
    learner = _learner(tables)
    labeller = Labeller(tables[2], script=["\x1b[A", "q"])
    label_session(learner, read=labeller.read, write=labeller.write, columns=100)
    assert sum(t.startswith("[m]atch") for t in labeller.out) == 1


# -------------------------------------------------- reviewed pairs (N17)
def test_review_asks_a_pair_listed_twice_once(tables, tmp_path):
    learner = _learner(tables, labels=tmp_path / "labels.csv")
    c = learner.candidates_.iloc[[3, 1, 7]][["left_id", "right_id"]]
    pairs = pd.concat([c, c.iloc[::-1]], ignore_index=True).assign(probability=0.5)
    labeller = Labeller(tables[2])
    assert (
        label_session(learner, pairs=pairs, read=labeller.read, write=labeller.write)
        == 3
    )
    assert labeller.shown == list(zip(c.left_id, c.right_id))
    assert any("p=0.50" in t for t in labeller.out)  # the probability is shown
