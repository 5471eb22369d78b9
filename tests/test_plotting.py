import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from skrecordpair.plotting import (
    ExplanationView,
    explanation_html,
    plot_explanation,
)


@pytest.fixture(scope="module")
def explanation(fitted, people):
    left, right, _ = people
    return fitted.explain(left.iloc[:3], right.iloc[:3])


def test_plot_renders_both_records_to_a_file(explanation, tmp_path):
    ax = plot_explanation(explanation, pair=1)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 2 * 6  # label and value per field, 3 fields a side
    rows = explanation[explanation["pair"] == 1]
    for field in rows["field"]:
        assert any(t.startswith(f"{field}: ") for t in texts)
    # Colours: positive fields red, negative ones blue, the strongest at the end.
    colours = np.array([p.get_facecolor()[:3] for p in ax.patches])
    values = rows["attribution"].to_numpy()
    nonzero = np.abs(values) > 1e-3
    assert np.all((colours[:, 0] > colours[:, 2])[nonzero] == (values > 0)[nonzero])
    strongest = np.argmax(np.abs(values))
    extreme = plt.get_cmap("RdBu_r")(1.0 if values[strongest] > 0 else 0.0)[:3]
    np.testing.assert_allclose(colours[strongest], extreme, atol=1e-6)
    path = tmp_path / "explanation.png"
    ax.figure.savefig(path)
    plt.close(ax.figure)
    assert path.stat().st_size > 5_000


def test_html_highlights_fields_and_escapes_text(explanation):
    page = explanation_html(explanation)
    assert page.startswith("<table") and page.count("<tr>") == 1 + 3
    assert "rgba(" in page
    view = ExplanationView(explanation, max_pairs=2)._repr_html_()
    assert view.count("<table") == 2 and "1 more pairs not shown" in view


def test_bad_inputs(explanation):
    with pytest.raises(ValueError, match="No pair 'nope'"):
        explanation_html(explanation, pair="nope")
    with pytest.raises(ValueError, match="lacks the columns"):
        plot_explanation(explanation.drop(columns="attribution"))
    with pytest.raises(ValueError, match="empty"):
        explanation_html(explanation.iloc[:0])
