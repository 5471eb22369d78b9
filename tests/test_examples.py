"""The example scripts of the documentation run and print what they promise."""

import os
import re
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.py", "model_selection.py"])
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    if name == "quickstart.py":
        assert "f1-score" in out and "attribution" in out
        assert (tmp_path / "explanation.png").stat().st_size > 5_000
    else:
        assert "best parameters:" in out and "threshold:" in out


def test_tables_to_matches(tmp_path, monkeypatch, capsys):
    script = EXAMPLES / "tables_to_matches.py"
    default = runpy.run_path(str(script))["DEFAULT_PATH"]  # defines, runs nothing
    folder = Path(os.environ.get("SKRECORDPAIR_FODORS_ZAGATS", default))
    if not folder.is_dir():
        pytest.skip(
            f"The Fodors-Zagats benchmark folder {folder} is absent; set "
            "SKRECORDPAIR_FODORS_ZAGATS to its path to run this example."
        )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), str(folder)])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out

    # The linked pairs are named by the ids of the benchmark's tables: most
    # labeled matches are found, and the explained pair is one of them.
    labeled = pd.concat(
        [
            pd.read_csv(folder / f"{split}.csv", dtype=str)
            for split in ("train", "valid", "test")
        ]
    )
    labeled = labeled[labeled["label"] == "1"]
    known = set(zip(labeled["ltable_id"], labeled["rtable_id"]))
    found = re.search(r"(\d+) of the (\d+) labeled matches were linked", out)
    assert found and int(found[2]) == len(known)
    assert int(found[1]) >= 0.9 * len(known)
    pair = re.search(r"explained pair: tableA id (\S+), tableB id (\S+),", out)
    assert pair and (pair[1], pair[2]) in known
    assert "attribution" in out
    # String labels throughout: the explanation names the match class.
    assert "prediction: match" in out
