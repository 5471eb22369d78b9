import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from skrecordpair.plotting import (
    AGAINST_MATCH,
    FOR_MATCH,
    ExplanationView,
    evidence_by_field,
    explanation_html,
    plot_evidence_by_field,
    plot_explanation,
    plot_waterfall,
    waterfall_steps,
)


@pytest.fixture(scope="module")
def explanation(fitted, people):
    left, right, _ = people
    return fitted.explain(left.iloc[:3], right.iloc[:3])


def _rgb(colour):
    return np.array(to_rgb(colour))


def test_plot_renders_both_records_to_a_file(explanation, tmp_path):
    ax = plot_explanation(explanation, pair=1)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 2 * 6  # label and value per field, 3 fields a side
    rows = explanation[explanation["pair"] == 1]
    for field in rows["field"]:
        assert any(t.startswith(f"{field}: ") for t in texts)
    # Colours: evidence for a match red, against it blue, the strongest at the end.
    colours = np.array([p.get_facecolor()[:3] for p in ax.patches])
    values = rows["evidence_for_match"].to_numpy()
    nonzero = np.abs(values) > 1e-3
    assert np.all((colours[:, 0] > colours[:, 2])[nonzero] == (values > 0)[nonzero])
    strongest = np.argmax(np.abs(values))
    extreme = FOR_MATCH if values[strongest] > 0 else AGAINST_MATCH
    np.testing.assert_allclose(colours[strongest], _rgb(extreme), atol=1e-6)
    assert ax.figure.axes[-1].get_ylabel() == "evidence for a match (log-odds)"
    path = tmp_path / "explanation.png"
    ax.figure.savefig(path)
    plt.close(ax.figure)
    assert path.stat().st_size > 5_000


def _pair_with_evidence(evidence, probability=0.9, baseline="reference", **columns):
    """A hand-made explanation of pair 0: fields a, b, ..., each side's
    evidence for a match given as ``[(left, right), ...]``."""
    fields = [chr(ord("a") + i) for i in range(len(evidence))]
    frame = pd.DataFrame(
        {
            "pair": 0,
            "side": ["left"] * len(fields) + ["right"] * len(fields),
            "field": fields * 2,
            "text": [f"value {f}" for f in fields] * 2,
            "evidence_for_match": [e[0] for e in evidence] + [e[1] for e in evidence],
            "attribution": 0.0,
            "target": 1,
            "prediction": 1,
            "probability": probability,
            "baseline": baseline,
            "baseline_log_odds": 0.0,
        }
    )
    return frame.assign(**columns)


def test_waterfall_ends_at_the_models_probability(fitted, people):
    # Few integration steps leave a visible integration error: the chart
    # still ends at predict_proba's probability, and the gap is a step.
    left, right, _ = people
    out = fitted.explain(left.iloc[:6], right.iloc[:6], n_steps=2)
    p_match = fitted.predict_proba(left.iloc[:6], right.iloc[:6])[:, 1]
    shown = 0
    for pair in range(6):
        steps = waterfall_steps(out, pair)
        assert steps["probability"].iloc[-1] == pytest.approx(p_match[pair], abs=1e-6)
        fields = steps["step"].isin(["name", "city", "year"])
        error = steps.attrs["integration_error"]
        rows = out[out["pair"] == pair]
        sign = 1 if rows["target"].iloc[0] == 1 else -1
        delta = rows.groupby("side")["convergence_delta"].first().mean()
        assert error == pytest.approx(-sign * delta, abs=1e-4)
        reached = steps["end"][fields].iloc[-1]
        if abs(error) >= 0.005:
            shown += 1
            rest = steps[steps["step"] == "integration error"]
            assert len(rest) == 1
            assert rest["start"].iloc[0] == pytest.approx(reached)
            assert rest["end"].iloc[0] == pytest.approx(steps["end"].iloc[-1])
        else:
            assert "integration error" not in set(steps["step"])
    assert shown > 0
    pair = next(
        p
        for p in range(6)
        if abs(waterfall_steps(out, p).attrs["integration_error"]) >= 0.005
    )
    ax = plot_waterfall(out, pair=pair)
    texts = [t.get_text() for t in ax.texts]
    assert texts[-1].endswith(f"(p={p_match[pair]:.3f})")
    assert any(t.endswith("(integration error)") for t in texts)
    assert "integration error" in [t.get_text() for t in ax.get_yticklabels()]
    plt.close(ax.figure)


def test_waterfall_shows_both_sides_when_they_disagree():
    # Sides of -1.09 and +1.09 averaged to a bar of nothing, written "-0.00".
    out = _pair_with_evidence(
        [(-1.09, 1.09), (0.5, 0.7)], probability=1 / (1 + np.exp(-0.6))
    )
    steps = waterfall_steps(out)
    assert steps["left_evidence"].iloc[1] == -1.09
    assert steps["right_evidence"].iloc[1] == 1.09
    ax = plot_waterfall(out)
    texts = [t.get_text() for t in ax.texts]
    assert texts[1] == "0.00  (left -1.09, right +1.09)"
    assert texts[2] == "+0.60"  # sides that agree: the mean alone
    # Two thin bars in the row of field a, one per side, coloured by sign.
    thin = [p for p in ax.patches if p.get_height() < 0.2]
    assert len(thin) == 2
    widths = sorted(
        (round(p.get_width(), 2), tuple(p.get_facecolor()[:3])) for p in thin
    )
    assert [w for w, _ in widths] == [1.09, 1.09]
    assert {c for _, c in widths} == {
        tuple(_rgb(FOR_MATCH)),
        tuple(_rgb(AGAINST_MATCH)),
    }
    # Every number lies inside the axes.
    renderer = ax.figure.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    assert all(t.get_window_extent(renderer).x1 <= box.x1 + 1 for t in ax.texts)
    plt.close(ax.figure)


def test_long_values_do_not_overrun_the_numbers():
    out = _pair_with_evidence([(2.0, 1.5), (-0.5, -1.0)])
    out["text"] = ["w" * 200, "short", "W" * 39, None]
    out.loc[out["field"] == "b", "field"] = "a_very_long_field_name_" * 4
    ax = plot_explanation(out)
    renderer = ax.figure.canvas.get_renderer()
    labels, numbers = ax.texts[0::2], ax.texts[1::2]
    for label, number in zip(labels, numbers):
        assert (
            label.get_window_extent(renderer).x1 < number.get_window_extent(renderer).x0
        )
    assert labels[0].get_text().startswith("a: www") and labels[0].get_text().endswith(
        "…"
    )
    assert labels[1].get_text().endswith("…")  # the long field name, shortened
    assert labels[2].get_text().startswith("a: WWW")
    plt.close(ax.figure)


def test_all_pictures_use_one_colour_meaning(fitted, people):
    # Red was "towards the explained class" in plot_explanation and the HTML
    # table, so against a match for a predicted non-match, while it meant
    # "for a match" in the waterfall.
    left, right, _ = people
    out = fitted.explain(left.iloc[:12], right.iloc[:12])
    non_match = out[(out["prediction"] == 0) & (out["evidence_for_match"].abs() > 0.05)]
    pair = non_match["pair"].iloc[0]
    rows = out[out["pair"] == pair]
    evidence = rows["evidence_for_match"].to_numpy()
    ax = plot_explanation(out, pair=pair)
    cells = np.array([p.get_facecolor()[:3] for p in ax.patches])
    strong = np.abs(evidence) > 0.05
    assert np.all(((cells[:, 0] > cells[:, 2]) == (evidence > 0))[strong])
    plt.close(ax.figure)
    page = explanation_html(out, pair=pair)
    against = "rgba(" + ", ".join(str(int(255 * c)) for c in _rgb(AGAINST_MATCH))
    towards = "rgba(" + ", ".join(str(int(255 * c)) for c in _rgb(FOR_MATCH))
    assert page.count(against) == int((evidence < 0).sum())
    assert page.count(towards) == int((evidence > 0).sum())
    assert "red: for a match" in page
    ax = plot_waterfall(out, pair=pair)
    steps = waterfall_steps(out, pair)
    for bar, value in zip(ax.patches[1:4], steps["evidence"].iloc[1:4]):
        colour = FOR_MATCH if value > 0 else AGAINST_MATCH
        np.testing.assert_allclose(bar.get_facecolor()[:3], _rgb(colour))
    plt.close(ax.figure)
    ax = plot_evidence_by_field(out)
    table = evidence_by_field(out)
    values = np.concatenate([table[c].fillna(0).to_numpy() for c in table.columns])
    for bar, value in zip(ax.patches, values):
        colour = FOR_MATCH if value > 0 else AGAINST_MATCH
        np.testing.assert_allclose(bar.get_facecolor()[:3], _rgb(colour))
    plt.close(ax.figure)


def test_html_highlights_fields_and_escapes_text(explanation):
    page = explanation_html(explanation)
    assert page.startswith("<table") and page.count("<tr>") == 1 + 3
    assert "rgba(" in page
    view = ExplanationView(explanation, max_pairs=2)._repr_html_()
    assert view.count("<table") == 2 and "1 more pairs not shown" in view


def test_bad_inputs(explanation):
    with pytest.raises(ValueError, match="No pair 'nope'"):
        explanation_html(explanation, pair="nope")
    with pytest.raises(
        ValueError,
        match=r"The explanation \(the frame returned by "
        r"RecordPairClassifier.explain\(\)\) must have "
        r"the columns .*; it lacks \['attribution'\]",
    ):
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
        assert table.loc["city", label] == pytest.approx(
            rows["evidence_for_match"].mean()
        )
    assert sum(table.attrs["pairs"].values()) == 12
    ax = plot_evidence_by_field(out)
    assert len(ax.patches) == table.size
    plt.close(ax.figure)


def test_waterfall_steps_add_up_to_the_pair(fitted, people):
    left, right, _ = people
    long_right = right.iloc[:4].assign(name="x" * 80)
    out = fitted.explain(left.iloc[:4], long_right)
    p_match = fitted.predict_proba(left.iloc[:4], long_right)[:, 1]
    for pair in range(4):
        steps = waterfall_steps(out, pair, max_chars=20)
        fields = ["name", "city", "year"]
        assert [s for s in steps["step"] if s != "integration error"] == [
            "baseline",
            *fields,
            "pair",
        ]
        # From the baseline, the fields' evidence and the integration error
        # reach the model's probability of a match.
        assert steps["probability"].iloc[-1] == pytest.approx(p_match[pair], abs=1e-6)
        inner = steps.iloc[1:-1]
        np.testing.assert_allclose(inner["end"] - inner["start"], inner["evidence"])
        np.testing.assert_allclose(inner["start"].iloc[1:], inner["end"].iloc[:-1])
        assert inner["end"].iloc[-1] == pytest.approx(steps["end"].iloc[-1], abs=0.005)
        # Long texts are shortened with an ellipsis.
        assert "x" * 19 + "…" in steps["label"].iloc[1]
        assert all(len(label) < 60 for label in steps["label"])
    ax = plot_waterfall(out, pair=0)
    n_steps = len(waterfall_steps(out, 0))
    assert len(ax.patches) >= n_steps
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].endswith(
        f"(p={waterfall_steps(out, 0)['probability'].iloc[0]:.3f})"
    )
    plt.close(ax.figure)


def test_html_links_to_the_explanations_page(explanation):
    from skrecordpair.plotting import DOCS_URL

    assert DOCS_URL.endswith("explanations.html")
    assert f'href="{DOCS_URL}"' in explanation_html(explanation)
