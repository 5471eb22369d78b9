"""The example scripts of the documentation run and print what they promise."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


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
