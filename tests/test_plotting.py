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


def test_evidence_by_field_is_the_mean_per_predicted_class(fitted, people):
    from skrecordpair import evidence_by_field, plot_evidence_by_field

    left, right, _ = people
    out = fitted.explain(left.iloc[:12], right.iloc[:12])
    table = evidence_by_field(out)
    assert list(table.index) == ["name", "city", "year"]
    assert set(table.columns) == set(out["prediction"])
    for label in table.columns:
        rows = out[(out["prediction"] == label) & (out["field"] == "city")]
        assert table.loc["city", label] == pytest.approx(rows["evidence_for_match"].mean())
    assert sum(table.attrs["pairs"].values()) == 12
    ax = plot_evidence_by_field(out)
    assert len(ax.patches) == table.size
    plt.close(ax.figure)


def test_waterfall_steps_add_up_to_the_pair(fitted, people):
    from skrecordpair import plot_waterfall
    from skrecordpair.plotting import waterfall_steps

    left, right, _ = people
    long_right = right.iloc[:4].assign(name="x" * 80)
    out = fitted.explain(left.iloc[:4], long_right)
    for pair in range(4):
        steps = waterfall_steps(out, pair, max_chars=20)
        assert list(steps["step"]) == ["baseline", "name", "city", "year", "pair"]
        rows = out[out["pair"] == pair]
        p_match = np.where(rows["prediction"].iloc[0] == 1, rows["probability"].iloc[0],
                           1 - rows["probability"].iloc[0])
        # From the baseline, the fields' evidence reaches the pair's
        # probability, up to the mean convergence delta.
        delta = rows.groupby("side")["convergence_delta"].first().mean()
        sign = 1 if rows["target"].iloc[0] == 1 else -1
        pair_log_odds = np.log(p_match / (1 - p_match))
        assert steps["end"].iloc[-1] - sign * delta == pytest.approx(pair_log_odds, abs=1e-4)
        np.testing.assert_allclose(steps["end"].iloc[1:-1] - steps["start"].iloc[1:-1],
                                   steps["evidence"].iloc[1:-1])
        # Long texts are shortened with an ellipsis.
        assert "x" * 19 + "…" in steps["label"].iloc[1]
        assert all(len(label) < 60 for label in steps["label"])
    ax = plot_waterfall(out, pair=0)
    assert len(ax.patches) == 5
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].endswith(f"(p={steps['probability'].iloc[0]:.3f})") or "p=" in texts[0]
    plt.close(ax.figure)


def test_html_links_to_the_explanations_page(explanation):
    from skrecordpair.plotting import DOCS_URL

    assert DOCS_URL.endswith("explanations.html")
    assert f'href="{DOCS_URL}"' in explanation_html(explanation)
