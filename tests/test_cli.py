"""The ``link`` and ``deduplicate`` commands: a labels file in, a matches file out."""

import contextlib
import io
import re

import pandas as pd
import pytest

import skrecordpair.__main__ as cli
from skrecordpair import RecordPairClassifier
from skrecordpair.datasets import load_febrl

from .conftest import TINY

N = 60


@pytest.fixture(scope="module")
def febrl():
    """A FEBRL subset as two tables with ids, and labels of 30 of their pairs
    (row i of one table paired with row i of the other)."""
    left, right, y = load_febrl("test")
    left = left.iloc[:N].set_axis([f"a{i}" for i in range(N)]).rename_axis("id")
    right = right.iloc[:N].set_axis([f"b{i}" for i in range(N)]).rename_axis("id")
    labels = pd.DataFrame(
        {"left_id": left.index[:30], "right_id": right.index[:30], "label": y[:30]}
    )
    assert 0 < labels["label"].sum() < 30
    return left, right, labels


@pytest.fixture
def files(febrl, tmp_path):
    left, right, labels = febrl
    left.to_csv(tmp_path / "left.csv")
    right.to_csv(tmp_path / "right.csv")
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path


@pytest.fixture
def tiny(monkeypatch):
    """The commands train a tiny network, to keep the tests fast."""
    monkeypatch.setattr(
        cli,
        "_estimator",
        lambda args: RecordPairClassifier(
            **TINY,
            max_epochs=args.max_epochs,
            random_state=args.seed,
            verbose=int(not args.quiet),
        ),
    )


def _run(*argv):
    return cli.main([str(a) for a in argv])


def _link(files, *extra, quiet=True):
    """The link command over the fixture's files, matches to matches.csv."""
    return _run(
        "link",
        files / "left.csv",
        files / "right.csv",
        "--labels",
        files / "labels.csv",
        "--out",
        files / "matches.csv",
        *(["--quiet"] if quiet else []),
        *extra,
    )


def test_link_end_to_end(files, tiny, capsys):
    out = files / "matches.csv"
    assert _link(files, "--k", 3, "--max-epochs", 2, quiet=False) == 0
    matches = pd.read_csv(out)
    assert list(matches.columns) == ["left_id", "right_id", "similarity", "probability"]
    assert len(matches) > 0
    assert matches["left_id"].str.match(r"a\d+$").all()
    assert matches["right_id"].str.match(r"b\d+$").all()
    assert (matches["probability"].between(0, 1)).all()
    printed, err = capsys.readouterr()
    again = (matches["left_id"].value_counts() > 1).sum() + (
        matches["right_id"].value_counts() > 1
    ).sum()
    assert (
        f"60 left and 60 right records, 180 candidate pairs (k=3), "
        f"{len(matches)} matches written to {out}."
    ) in printed
    assert f"{again} record(s) matched more than once" in printed
    # The progress of each long step, on by default.
    assert "[ActiveLearner] Fitting RecordPairClassifier on 30 labelled" in printed
    assert "[link] Blocking: 60 left records against 60 right records" in printed
    assert "[link] Scoring candidate pairs" in err


def test_link_one_to_one_and_threshold_quietly(files, tiny, capsys):
    out = files / "matches.csv"
    _link(files, "--k", 3, "--max-epochs", 1, "--one-to-one", "--threshold", 0)
    matches = pd.read_csv(out)
    # Threshold 0 keeps every candidate; one to one, each record at most once.
    assert 0 < len(matches) <= N
    assert matches["left_id"].is_unique and matches["right_id"].is_unique
    printed, err = capsys.readouterr()
    assert printed.strip().splitlines() == [
        f"60 left and 60 right records, 180 candidate pairs (k=3), {len(matches)} "
        f"matches written to {out}.",
        "0 record(s) matched more than once.",
    ]
    assert err == ""


def test_deduplicate_end_to_end(febrl, tiny, tmp_path, capsys):
    left, right, labels = febrl
    pd.concat([left, right]).to_csv(tmp_path / "table.csv")
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out, clusters = tmp_path / "matches.csv", tmp_path / "clusters.csv"
    assert (
        _run(
            "deduplicate",
            tmp_path / "table.csv",
            "--labels",
            tmp_path / "labels.csv",
            "--out",
            out,
            "--clusters",
            clusters,
            "--k",
            3,
            "--max-epochs",
            2,
            "--quiet",
        )
        == 0
    )
    matches = pd.read_csv(out)
    assert list(matches.columns) == ["left_id", "right_id", "similarity", "probability"]
    assert len(matches) > 0
    entities = pd.read_csv(clusters, index_col="id")["cluster"]
    assert len(entities) == 2 * N
    # Matched records are in the same entity.
    assert (
        entities.loc[matches["left_id"]].to_numpy()
        == entities.loc[matches["right_id"]].to_numpy()
    ).all()
    printed = capsys.readouterr().out
    assert "120 records, " in printed
    assert f"{len(matches)} matches written to {out}." in printed
    assert "entities with more than one record" in printed


# ----------------------------------------------------------------- bad input
def _fails(files, match, *extra):
    """The command stops with an error matching `match` (a SystemExit message,
    or the one-line ``error:`` that main prints for a ValueError) and writes
    no matches."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            code = _link(files, *extra)
    except SystemExit as stop:
        message = str(stop)
    else:
        assert code == 1
        message = stderr.getvalue()
    assert re.search(match, message), message
    assert not (files / "matches.csv").exists()


def test_labels_whose_ids_are_not_in_the_tables(files):
    labels = pd.read_csv(files / "labels.csv")
    labels.loc[3, "right_id"] = "zz9"
    labels.to_csv(files / "labels.csv", index=False)
    _fails(
        files,
        r"labels.csv: 1 right_id value\(s\) are not ids of .*right.csv: "
        r"\['zz9'\]; its ids \(column 'id'\) are e.g. \['b0', 'b1'",
    )


def test_labels_given_on_other_ids(files):
    # The tables have an id column, but the labels name the row numbers.
    labels = pd.read_csv(files / "labels.csv")
    labels["left_id"] = range(len(labels))
    labels.to_csv(files / "labels.csv", index=False)
    _fails(files, r"30 left_id value\(s\) are not ids of .*left.csv: \['0', '1'")


def test_tables_without_unique_ids(files):
    left = pd.read_csv(files / "left.csv", dtype=str)
    left.loc[5, "id"] = "a0"
    left.to_csv(files / "left.csv", index=False)
    _fails(
        files,
        r"left.csv: the id column 'id' must name each record once; it "
        r"repeats 1 id\(s\): 'a0'",
    )
    _fails(
        files, r"left.csv: no column 'key' \(the --id column\)", "--id-column", "key"
    )


def test_empty_tables(files):
    (files / "right.csv").write_text("id,given_name,surname\n")
    _fails(
        files,
        r"right.csv: the table has no record \(only its header "
        r"\['given_name', 'surname'\]\)",
    )
    (files / "right.csv").write_text("")
    _fails(files, r"right.csv: the file is empty")


def test_labels_without_a_match_or_missing(files):
    labels = pd.read_csv(files / "labels.csv")
    labels[labels["label"] == 0].to_csv(files / "labels.csv", index=False)
    _fails(files, r"at least one match and one non-match; the file has 0 match\(es\)")
    (files / "labels.csv").unlink()
    _fails(files, r"labels.csv: no such labels file. Label pairs of the tables first")
    assert not (files / "labels.csv").exists()  # not created empty
