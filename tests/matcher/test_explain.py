import copy
import doctest
import io
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from skrecordpair import RecordPairClassifier, pair_frame
from skrecordpair._matcher.batches import PairDataset, collate_pairs
from skrecordpair._matcher.explain import EXACT_SHAPLEY_FIELDS, _each_side

from ..conftest import TINY

COLUMNS = [
    "pair",
    "side",
    "field",
    "text",
    "attribution",
    "raw_attribution",
    "target",
    "prediction",
    "probability",
    "convergence_delta",
    "evidence_for_match",
    "baseline",
    "baseline_log_odds",
]


def test_output_schema_and_order(fitted, people):
    left, right, _ = people
    X = pair_frame(left.iloc[:3], right.iloc[:3]).set_axis(["a", "b", "c"])
    out = fitted.explain(X)
    assert list(out.columns) == COLUMNS
    assert len(out) == 3 * 2 * 3
    assert list(out["pair"][:6]) == ["a"] * 6
    assert list(out["side"][:6]) == ["left"] * 3 + ["right"] * 3
    assert list(out["field"][:6]) == ["name", "city", "year"] * 2
    assert out["text"][0] == left["name"][0] and out["text"][3] == right["name"][0]
    assert out["text"][2] == str(left["year"][0])
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(out["probability"][::6], proba.max(1), atol=1e-5)
    assert list(out["prediction"][::6]) == list(fitted.predict(X))
    assert (out["target"] == out["prediction"]).all()
    for dtype_col in (
        "attribution",
        "raw_attribution",
        "probability",
        "convergence_delta",
    ):
        assert out[dtype_col].dtype == np.float64


def test_pairs_named_by_a_multiindex(fitted, people):
    left, right, _ = people
    X = pair_frame(left.iloc[:3], right.iloc[:3])
    X.index = pd.MultiIndex.from_arrays(
        [["l7", "l3", "l7"], [10, 11, 12]], names=["left_id", "right_id"]
    )
    out = fitted.explain(X)
    assert list(out.columns) == COLUMNS[:1] + ["left_id", "right_id"] + COLUMNS[1:]
    assert list(out["left_id"][::6]) == ["l7", "l3", "l7"]
    assert list(out["right_id"][::6]) == [10, 11, 12]
    assert out["right_id"].dtype == np.int64
    assert list(out["pair"][::6]) == [("l7", 10), ("l3", 11), ("l7", 12)]
    # The rest is what the same pairs give without the index.
    plain = fitted.explain(X.reset_index(drop=True))
    pd.testing.assert_frame_equal(out[COLUMNS[1:]], plain[COLUMNS[1:]])
    # Levels without a usable name get one.
    X.index.names = [None, "side"]
    out = fitted.explain(X)
    assert list(out.columns[1:3]) == ["pair_level_0", "pair_level_1"]


def test_explain_linked_pairs(fitted, people):
    from skrecordpair import NearestNeighborBlocker, link

    left, right, _ = people
    left = left.iloc[:12].set_axis([f"a{i}" for i in range(12)])
    right = right.iloc[:12].set_axis([f"b{i}" for i in range(12)])
    matches = link(left, right, NearestNeighborBlocker(k=2), fitted, threshold=0)
    top = matches.head(2)
    X = pair_frame(left.loc[top["left_id"]], right.loc[top["right_id"]])
    X.index = pd.MultiIndex.from_frame(top[["left_id", "right_id"]])
    out = fitted.explain(X)
    assert list(out["left_id"][::6]) == list(top["left_id"])
    assert list(out["right_id"][::6]) == list(top["right_id"])
    # The explained probability is the one link reported.
    np.testing.assert_allclose(
        np.where(
            out["prediction"][::6] == 1,
            out["probability"][::6],
            1 - out["probability"][::6],
        ),
        top["probability"],
        atol=1e-5,
    )
    first = out.iloc[0]
    assert first["text"] == left.loc[first["left_id"], "name"]


def test_no_pairs_give_an_empty_frame(fitted, people):
    left, right, _ = people
    X = pair_frame(left.iloc[:0], right.iloc[:0])
    out = fitted.explain(X)
    assert list(out.columns) == COLUMNS
    assert len(out) == 0
    for column in (
        "attribution",
        "raw_attribution",
        "probability",
        "convergence_delta",
    ):
        assert out[column].dtype == np.float64
    assert out["prediction"].dtype == fitted.classes_.dtype
    empty = fitted.explain(left.iloc[:0], right.iloc[:0], target=[])
    assert list(empty.columns) == COLUMNS and len(empty) == 0
    X.index = pd.MultiIndex.from_arrays([[], []], names=["left_id", "right_id"])
    assert list(fitted.explain(X).columns) == (
        COLUMNS[:1] + ["left_id", "right_id"] + COLUMNS[1:]
    )


def test_normalisation_is_per_side_l2(fitted, people):
    left, right, _ = people
    out = fitted.explain(left.iloc[:4], right.iloc[:4])
    norms = out.groupby(["pair", "side"])["attribution"].apply(lambda a: np.sum(a**2))
    np.testing.assert_allclose(norms[norms > 0], 1, rtol=1e-6)
    raw = fitted.explain(left.iloc[:4], right.iloc[:4], normalize=False)
    np.testing.assert_array_equal(raw["attribution"], raw["raw_attribution"])
    np.testing.assert_allclose(raw["raw_attribution"], out["raw_attribution"])


def test_identical_records_are_evidence_for_a_match(fitted, people):
    # A perfect duplicate is a predicted match, explained against the records
    # with every field missing: each side's evidence adds up to a gain.
    left = people[0].iloc[:3]
    out = fitted.explain(left, left)
    assert (out["prediction"] == 1).all() and (out["baseline"] == "reference").all()
    gains = out.groupby(["pair", "side"])["evidence_for_match"].sum()
    assert (gains > 0).all(), gains
    np.testing.assert_array_equal(out["evidence_for_match"], out["raw_attribution"])


def test_batch_and_alone_agree(fitted, people):
    left, right, _ = people
    together = fitted.explain(left.iloc[:6], right.iloc[:6])
    alone = fitted.explain(left.iloc[[4]], right.iloc[[4]])
    np.testing.assert_allclose(
        alone["raw_attribution"], together["raw_attribution"][24:30], atol=1e-5
    )


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after the test."""
    n_threads = torch.get_num_threads()
    yield
    torch.set_num_threads(n_threads)


def test_sides_run_at_once_with_the_same_result(fitted, people, torch_threads):
    # With two threads or more (n_jobs) the two sides run concurrently, each
    # on its share of the threads; one thread runs them in turn.
    left, right, _ = people
    torch.set_num_threads(2)
    in_turn = (
        copy.copy(fitted).set_params(n_jobs=1).explain(left.iloc[:6], right.iloc[:6])
    )
    assert torch.get_num_threads() == 2
    at_once = (
        copy.copy(fitted).set_params(n_jobs=3).explain(left.iloc[:6], right.iloc[:6])
    )
    assert torch.get_num_threads() == 2
    pd.testing.assert_frame_equal(at_once, in_turn, check_exact=False, atol=1e-6)


def test_an_error_in_one_side_reaches_the_caller(torch_threads):
    torch.set_num_threads(2)

    def fails():
        raise RuntimeError("side failed")

    with pytest.raises(RuntimeError, match="side failed"):
        _each_side(lambda: 1, fails, torch.device("cpu"))
    assert torch.get_num_threads() == 2
    assert _each_side(lambda: "left", lambda: "right", torch.device("cpu")) == (
        "left",
        "right",
    )


def test_parameters_stay_trainable(people):
    # explain switches the parameters' gradients off while it runs, for speed.
    left, right, y = people
    clf = RecordPairClassifier(**TINY, max_epochs=1, warm_start=True, random_state=0)
    clf.fit(left, right, y)
    clf.explain(left.iloc[:2], right.iloc[:2])
    params = list(clf.net_.module_.parameters())
    assert all(p.requires_grad for p in params)
    before = [p.detach().clone() for p in params]
    clf.fit(left, right, y)
    assert any(not torch.equal(a, p) for a, p in zip(before, params))


def test_explicit_targets(fitted, people):
    left, right, _ = people
    out = fitted.explain(left.iloc[:2], right.iloc[:2], target=0)
    assert (out["target"] == 0).all()
    per_pair = fitted.explain(left.iloc[:2], right.iloc[:2], target=[0, 1])
    assert list(per_pair["target"][::6]) == [0, 1]
    with pytest.raises(ValueError, match="not among the classes \\[0, 1\\]"):
        fitted.explain(left.iloc[:2], right.iloc[:2], target=5)
    with pytest.raises(ValueError, match="got 3 labels for 2 pairs"):
        fitted.explain(left.iloc[:2], right.iloc[:2], target=[0, 1, 1])
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        fitted.explain(left.iloc[:2], right.iloc[:2], n_steps=0)


def _missing(records):
    return pd.DataFrame(
        None, index=records.index, columns=records.columns, dtype=object
    )


def _completeness_gaps(clf, left, right, n_steps=50):
    """Per side: raw attribution sum minus the change of the explained log-odds
    it should explain, and the convergence delta explain reports (the two must
    agree). The baseline of a predicted match is the record with every field
    missing, that of a predicted non-match the other record."""
    n = len(left)
    out = clf.explain(left, right, n_steps=n_steps)
    module = clf.net_.module_.eval()

    def inputs(left_records, right_records):
        dataset = PairDataset(
            clf.featurizer_.transform(pair_frame(left_records, right_records))
        )
        return collate_pairs([dataset[i] for i in range(n)])[0]

    def encode(batch):
        return module.encode_fields(
            batch["left"], batch["right"], batch["token_words"], batch["token_chars"]
        )

    batch = inputs(left, right)
    # The similarity features and prior of the baselines: the perfect
    # duplicates (a record compared with itself) and the references (a record
    # with every field missing), computed independently of explain().
    duplicates = {"left": inputs(right, right), "right": inputs(left, left)}
    references = {
        "left": inputs(_missing(left), right),
        "right": inputs(left, _missing(right)),
    }
    assert ("similarity" in batch) == clf.similarity_features
    assert ("prior" in batch) == clf.similarity_prior
    with torch.no_grad():
        fe1, m1, fe2, m2 = encode(batch)
        r1, r2 = module.encode_record(fe1, m1), module.encode_record(fe2, m2)
        logits = module.match_records(
            r1, m1, r2, m2, batch.get("similarity"), batch.get("prior")
        )

        def moved(side, fe, base):  # logits with `side` moved to the encodings fe
            if side == "left":
                return module.match_records(
                    module.encode_record(fe, m1),
                    m1,
                    r2,
                    m2,
                    base.get("similarity"),
                    base.get("prior"),
                )
            return module.match_records(
                r1,
                m1,
                module.encode_record(fe, m2),
                m2,
                base.get("similarity"),
                base.get("prior"),
            )

        at_duplicate = {
            "left": moved("left", fe2, duplicates["left"]),
            "right": moved("right", fe1, duplicates["right"]),
        }
        at_reference = {
            "left": moved("left", encode(references["left"])[0], references["left"]),
            "right": moved(
                "right", encode(references["right"])[2], references["right"]
            ),
        }
    target = logits.argmax(1)
    is_match = (target == 1).numpy()

    def log_odds(z):  # of the explained (predicted) class
        z = z.double().numpy()
        return np.where(target.numpy() == 1, 1, -1) * (z[:, 1] - z[:, 0])

    sums = out.groupby(["pair", "side"], sort=False)["raw_attribution"].sum()
    deltas = out.groupby(["pair", "side"], sort=False)["convergence_delta"].first()
    gaps, changes = {}, {}
    for side in ("left", "right"):
        base = np.where(
            is_match, log_odds(at_reference[side]), log_odds(at_duplicate[side])
        )
        changes[side] = log_odds(logits) - base
        gaps[side] = sums.xs(side, level=1) - changes[side]
    scale = np.abs(changes["left"]).max()
    return gaps, {side: deltas.xs(side, level=1) for side in gaps}, scale


@pytest.mark.parametrize(
    "variant, similarity",
    [
        ("allennlp", dict()),
        ("paper", dict()),
        ("paper", dict(similarity_features=False, similarity_prior=False)),
        ("paper", dict(similarity_features=False)),  # the prior only
        ("paper", dict(similarity_prior=False)),  # the head's features only
    ],
)
def test_completeness(people, variant, similarity):
    """Raw attributions sum to the change of the log-odds from the baseline."""
    left, right, y = people
    clf = RecordPairClassifier(
        **TINY, max_epochs=3, random_state=0, matching_variant=variant, **similarity
    ).fit(left, right, y)
    gaps, deltas, scale = _completeness_gaps(clf, left.iloc[:8], right.iloc[:8])
    # By definition of the delta, and independently computed logits:
    for side in gaps:
        np.testing.assert_allclose(gaps[side], deltas[side], atol=1e-4)
    if variant == "allennlp":
        # Continuous except where a matching vector passes through zero (its cosine
        # flips sign there): the deltas vanish as the integration gets finer, for
        # all but such rare paths. (The paper variant also jumps wherever an argmax
        # switches; its deltas need not shrink.)
        fine, _, _ = _completeness_gaps(clf, left.iloc[:8], right.iloc[:8], n_steps=500)
        fine = np.abs(np.concatenate([fine[side] for side in fine]))
        coarse = np.abs(np.concatenate([deltas[side] for side in deltas]))
        assert np.median(fine) <= 0.001 * scale
        assert (fine <= 0.01 * scale).mean() >= 0.75
        assert fine.sum() < coarse.sum()


def test_completeness_with_sampled_prior_shapley_values(people):
    """Beyond EXACT_SHAPLEY_FIELDS fields the prior's Shapley values are sampled;
    they still add up exactly to the prior's share of the logit change."""
    left, right, y = people

    def widen(records):  # 9 fields: the records, then two shuffled copies
        copies = [
            records.sample(frac=1, random_state=k)
            .reset_index(drop=True)
            .add_suffix(f"_{k}")
            for k in (2, 3)
        ]
        return pd.concat([records, *copies], axis=1)

    wide_left, wide_right = widen(left), widen(right)
    assert wide_left.shape[1] > EXACT_SHAPLEY_FIELDS
    clf = RecordPairClassifier(
        **TINY, max_epochs=2, random_state=0, matching_variant="allennlp"
    ).fit(wide_left, wide_right, y)
    gaps, deltas, _ = _completeness_gaps(clf, wide_left.iloc[:8], wide_right.iloc[:8])
    for side in gaps:
        np.testing.assert_allclose(gaps[side], deltas[side], atol=1e-4)
    # Sampling is seeded: the same call gives the same attributions.
    first = clf.explain(wide_left.iloc[:4], wide_right.iloc[:4])
    again = clf.explain(wide_left.iloc[:4], wide_right.iloc[:4])
    np.testing.assert_array_equal(first["raw_attribution"], again["raw_attribution"])


def test_the_deciding_field_gets_the_most_attribution():
    """Only `key` decides the label; `noise` is equal or different at random."""
    rng = np.random.default_rng(0)
    n = 300
    words = [f"w{i}" for i in range(40)]
    key = rng.choice(words, n)
    y = rng.integers(0, 2, n)
    other_key = np.where(y == 1, key, [w + "x" for w in rng.choice(words, n)])
    noise = rng.choice(words, n)
    other_noise = np.where(rng.random(n) < 0.5, noise, rng.choice(words, n))
    left = pd.DataFrame({"noise": noise, "key": key})
    right = pd.DataFrame({"noise": other_noise, "key": other_key})
    clf = RecordPairClassifier(
        **TINY, max_epochs=10, lr=1e-2, early_stopping=False, random_state=0
    ).fit(left, right, y)
    assert clf.score(left, right, y) > 0.9
    out = clf.explain(left.iloc[:60], right.iloc[:60])
    mean_abs = out.groupby(["side", "field"])["attribution"].apply(
        lambda a: a.abs().mean()
    )
    for side in ("left", "right"):
        assert mean_abs[side, "key"] > mean_abs[side, "noise"], mean_abs
    # The evidence points both ways: the key is evidence for each predicted
    # match and against each predicted non-match, more than the noise.
    evidence = out.pivot_table(
        index=["pair", "side"], columns="field", values="evidence_for_match"
    )
    match = out.groupby(["pair", "side"])["prediction"].first() == 1
    assert 5 < match.sum() < len(match) - 5
    assert (evidence["key"][match] > 0).all(), evidence[match]
    assert (evidence["key"][~match] < 0).all(), evidence[~match]
    assert (evidence["key"][match] > evidence["noise"][match]).mean() > 0.9
    assert (evidence["key"][~match] < evidence["noise"][~match]).mean() > 0.9


def test_evidence_for_match_does_not_depend_on_the_target(fitted, people):
    left, right, _ = people
    as_match = fitted.explain(left.iloc[:4], right.iloc[:4], target=1)
    as_non_match = fitted.explain(left.iloc[:4], right.iloc[:4], target=0)
    np.testing.assert_allclose(
        as_match["evidence_for_match"], as_non_match["evidence_for_match"], atol=1e-6
    )
    np.testing.assert_allclose(
        as_match["raw_attribution"], -as_non_match["raw_attribution"], atol=1e-6
    )
    np.testing.assert_allclose(
        as_match["baseline_log_odds"], as_non_match["baseline_log_odds"], atol=1e-5
    )
    # The baseline depends on the prediction only.
    predicted = as_match.groupby("pair")["prediction"].first()
    baseline = as_match.groupby("pair")["baseline"].first()
    assert list(baseline) == ["reference" if p == 1 else "duplicate" for p in predicted]


def test_evidence_of_labels_without_a_known_match(people):
    left, right, y = people
    words = np.array(["different", "same"])[y]
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0).fit(
        left, right, words
    )
    with pytest.warns(UserWarning, match="cannot tell which of the classes"):
        out = clf.explain(left.iloc[:2], right.iloc[:2])
    assert out["evidence_for_match"].isna().all()
    assert (out["baseline"] == "duplicate").all()
    assert out["raw_attribution"].notna().all()
    clf.set_params(pos_label="same").fit(left, right, words)
    out = clf.explain(left.iloc[:2], right.iloc[:2])
    assert out["evidence_for_match"].notna().all()
    # Three classes: no match class, the explained class's logit.
    three = np.where(np.arange(len(y)) % 5 == 0, 2, y)
    clf = RecordPairClassifier(**TINY, max_epochs=1, random_state=0).fit(
        left, right, three
    )
    out = clf.explain(left.iloc[:2], right.iloc[:2])
    assert (
        out["evidence_for_match"].isna().all() and out["baseline_log_odds"].isna().all()
    )
    assert out["raw_attribution"].notna().all()


def test_shuffled_reference(fitted, people):
    from skrecordpair._matcher.explain import explain_pairs

    left, right, _ = people
    X = pair_frame(left.iloc[:6], right.iloc[:6])
    missing = explain_pairs(fitted, X)
    shuffled = explain_pairs(fitted, X, reference="shuffled")
    # Only the predicted matches move from the reference.
    match = missing["prediction"] == 1
    assert match.any() and (~match).any()
    np.testing.assert_allclose(
        shuffled["raw_attribution"][~match],
        missing["raw_attribution"][~match],
        atol=1e-6,
    )
    assert not np.allclose(
        shuffled["raw_attribution"][match], missing["raw_attribution"][match]
    )
    with pytest.raises(ValueError, match="reference must be one of"):
        explain_pairs(fitted, X, reference="random")


def test_exact_prior_shapley_values_equal_captums():
    """The coalition-based exact Shapley values equal captum's permutation-based
    ShapleyValues, on a nonlinear function with grouped features and NaN."""
    from captum.attr import ShapleyValues

    from skrecordpair._matcher.explain import prior_shapley

    rng = np.random.default_rng(0)
    fields = np.array([0, 0, 1, 2, 2, 2, 3])
    similarity, baseline = rng.random((6, 7)), rng.random((6, 7))
    similarity[0, 2] = np.nan  # a missing value in the pair

    def log_proba(x):
        x = np.nan_to_num(x, nan=0.5)
        score = np.sin(3 * x[:, 0]) * x[:, 3] + x[:, 2] * x[:, 6] - x[:, 4] ** 2
        return np.stack([score, -score, score * x[:, 1]], axis=1)

    target = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = prior_shapley(log_proba, similarity, baseline, fields, target).numpy()

    def forward(x):
        return torch.from_numpy(log_proba(np.where(x.numpy() == -7, np.nan, x.numpy())))

    theirs = ShapleyValues(forward).attribute(
        torch.from_numpy(np.nan_to_num(similarity, nan=-7)),
        baselines=torch.from_numpy(baseline),
        target=target,
        feature_mask=torch.as_tensor(fields)[None],
    )
    # (captum accumulates in float32)
    np.testing.assert_allclose(ours, theirs.numpy()[:, [0, 2, 3, 6]], atol=1e-6)
    # Efficiency: each pair's values add up to the change of its log-probability.
    change = np.take_along_axis(
        log_proba(similarity), target.numpy()[:, None], 1
    ) - np.take_along_axis(log_proba(baseline), target.numpy()[:, None], 1)
    np.testing.assert_allclose(ours.sum(1), change[:, 0], atol=1e-10)


def test_the_demo_shows_agreeing_fields_as_evidence_for_a_match(fitted, people):
    from skrecordpair.__main__ import evidence_table

    left, right, y = people
    # A matched pair whose city agrees: the city is evidence for the match.
    i = next(
        i
        for i in range(len(y))
        if y[i] == 1
        and left["city"][i] == right["city"][i]
        and fitted.predict(left.iloc[[i]], right.iloc[[i]])[0] == 1
    )
    table, first = evidence_table(fitted, left.iloc[[i]], right.iloc[[i]])
    assert first["baseline"] == "reference"
    assert list(table.index) == ["name", "city", "year"]
    assert table.loc["city", "left text"] == table.loc["city", "right text"]
    assert table.loc["city", "left evidence"] > 0
    assert table.loc["city", "right evidence"] > 0


def test_the_worked_example_of_the_docs_is_current():
    """The examples of "A first explanation" in docs/explanations.rst run as a
    doctest: their numbers are those of the present code."""
    text = (
        Path(__file__).resolve().parents[2] / "docs" / "explanations.rst"
    ).read_text()
    section = text.split("\nA first explanation\n")[1].split(
        "\nExplaining linked pairs\n"
    )[0]
    blocks = re.findall(r"\.\. code-block:: pycon\n\n((?:(?:   .*)?\n)+)", section)
    assert len(blocks) == 2
    example = textwrap.dedent("".join(blocks))
    test = doctest.DocTestParser().get_doctest(
        example, {}, "explanations.rst", "docs/explanations.rst", 0
    )
    output = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    result = runner.run(test, out=output.write)
    assert result.attempted >= 10
    assert result.failed == 0, output.getvalue()
