"""Per-field attributions (biome.text's record-pair explain), as evidence for a match.

:func:`explain_pairs` explains a fitted ``RecordPairClassifier``'s predictions,
as scikit-learn's inspection functions take a fitted estimator; it is what
``RecordPairClassifier.explain`` runs.

For each side, integrated gradients run over that side's field encodings, from
a *baseline* record to the record itself, the other record staying as it is;
summed over the encoding dimension, this gives one attribution per field. The
embeddings and the field encoder are not on the path: the encodings are
computed first, without gradients, in eval mode.

What is explained is the log-odds of the explained class, ``log p / (1 - p)``
(for two classes the difference of the two logits: only it moves the
probability), or with more than two classes the explained class's logit. The
baseline depends on the predicted class, so that the attributions answer the
question a user asks (binary tasks with a known match class):

- a predicted match is explained against a *non-matching reference*: the
  moving record with every field missing (``reference="missing"``, the
  default) or, for measurement, the record of another pair
  (``reference="shuffled"``). The fields that agree get the credit.
- a predicted non-match is explained against a *perfect duplicate*: the moving
  record replaced by the other one. The fields that disagree get the blame.

``evidence_for_match`` is the attribution signed towards the match class,
whatever the explained class. With more than two classes, or an unknown match
class, every pair is explained against the perfect duplicate and there is no
evidence for a match.

When the network also reads per-field similarity features, they move along the
same path, from the similarities of the baseline pair to those of the pair, and
each feature's attribution is added to its field's. The similarity prior's
share, a constant on that path, is attributed to the fields by Shapley values
between the same two pairs. Per side, the attributions then add up to the
change of the explained quantity from the baseline to the pair (completeness),
up to the integration error that ``convergence_delta`` reports.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from math import factorial
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, ShapleyValueSampling
from sklearn.utils.validation import column_or_1d
from skorch.utils import to_tensor

from .._pairs import PairTexts
from .batches import PairDataset, collate_pairs
from .classes import match_index
from .featurizer import as_network_input, chunks

# The non-matching references a predicted match is explained against.
REFERENCES = ("missing", "shuffled")


def explain_pairs(
    clf, X, *, target=None, n_steps=50, normalize=True, reference="missing"
):
    """Per-field attributions of a fitted classifier's predictions on `X`.

    See :meth:`RecordPairClassifier.explain <skrecordpair.RecordPairClassifier.explain>`,
    which validates `X` and calls this.

    Parameters
    ----------
    clf : RecordPairClassifier
        The fitted classifier, read through its public attributes only
        (``classes_``, ``pos_label``, ``fields_``, ``featurizer_``, ``net_``),
        as scikit-learn's inspection functions read an estimator.
    X : pandas.DataFrame
        A pair frame with the columns of the fields `clf` was fitted on.
    target : label, array-like of labels or None, default=None
        The class to explain, for all pairs or per pair; None explains the
        predicted class.
    n_steps : int, default=50
        Integration steps.
    normalize : bool, default=True
        Whether the ``attribution`` column holds the L2-normalised values.
    reference : {"missing", "shuffled"}, default="missing"
        The non-matching reference of a predicted match: the moving record
        with every field missing, or the record on the same side of another
        pair of `X` (a seeded derangement of the pairs; with one pair, that
        pair itself). "shuffled" makes a pair's explanation depend on the
        other pairs; it is there to be compared (see
        ``benchmarks/explain_faithfulness.py``).

    Returns
    -------
    pandas.DataFrame
        One row per (pair, side, field); the columns are described in
        ``RecordPairClassifier.explain``.
    """
    one_sided = [f for f in clf.fields_ if not f.two_sided]
    if one_sided:
        raise ValueError(
            "explain() needs the same fields in the same order on both sides; "
            f"the model was fitted with fields present on one side only: "
            f"{[(f.left, f.right) for f in one_sided]}."
        )
    if not isinstance(n_steps, numbers.Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
    if reference not in REFERENCES:
        raise ValueError(
            f"reference must be one of {list(REFERENCES)}; got {reference!r}."
        )
    targets = _target_indices(target, len(X), clf.classes_)
    match = _match_class(clf.classes_, clf.pos_label)
    net = clf.net_
    module = net.module_
    module.eval()
    # net_.device, not clf.device: skorch moves a CUDA model that is
    # unpickled without a GPU to the CPU and records it there.
    device = net.device
    featurizer = clf.featurizer_
    fields_of_features = featurizer.feature_fields
    results, texts = [], []
    start = 0
    for chunk in chunks(X):
        inputs = featurizer.explanation_inputs(chunk)
        texts.append(inputs.texts)
        references = (
            None
            if match is None
            else _reference_inputs(featurizer, inputs.texts, clf.fields_, reference)
        )
        offset = start
        for batch, _ in net.get_iterator(PairDataset(inputs.encoded), training=False):
            batch = to_tensor(batch, device)
            rows = np.arange(start - offset, start - offset + len(batch["left"]))
            stop = start + len(rows)
            batch_target = (
                None
                if targets is None
                else torch.as_tensor(targets[start:stop], device=device)
            )
            options = {}
            duplicates = None
            if featurizer.plan_ is not None:
                duplicates = [b[rows] for b in inputs.baselines]
            if featurizer.n_network_features:
                options = dict(
                    similarity_baselines=tuple(
                        to_tensor(as_network_input(b), device) for b in duplicates
                    ),
                    similarity_fields=torch.as_tensor(
                        fields_of_features, device=device
                    ),
                )
            if references is not None:
                n_chunk = len(chunk)
                options["reference"] = to_tensor(
                    collate_pairs(
                        [
                            (references.dataset, i)
                            for i in np.concatenate([rows, n_chunk + rows])
                        ]
                    )[0],
                    device,
                )
            result = {
                k: v.cpu()
                for k, v in integrated_gradients(
                    module, batch, batch_target, n_steps=n_steps, match=match, **options
                ).items()
            }
            if featurizer.prior_ is not None:
                prior_baselines = duplicates
                if references is not None:
                    is_match = result["reference"].numpy()[:, None]
                    prior_baselines = [
                        np.where(is_match, reference[rows], duplicate)
                        for reference, duplicate in zip(
                            references.similarity, duplicates
                        )
                    ]
                _add_prior_attributions(
                    result,
                    featurizer.prior_log_proba,
                    inputs.similarity[rows],
                    prior_baselines,
                    fields_of_features,
                )
            results.append(result)
            start = stop
    return _explanation_frame(
        X, results, texts, clf.fields_, clf.classes_, match, normalize
    )


def _match_class(classes, pos_label):
    """The match class's index in `classes`, or None: more than two classes,
    or two whose match class is unknown (with a warning, as the evidence for
    a match is then missing)."""
    if len(classes) != 2:
        return None
    index = match_index(classes, pos_label)
    if index is None:
        warnings.warn(
            f"explain() cannot tell which of the classes {classes.tolist()} is the "
            "match: evidence_for_match is NaN and every pair is explained against a "
            "perfect duplicate. Pass pos_label=<the match label> to "
            "RecordPairClassifier (and refit), or use the labels 0/1, -1/1 or False/True.",
            UserWarning,
            stacklevel=4,
        )
    return index


class _References(NamedTuple):
    """The reference pairs of a chunk of n pairs: rows 0..n-1 pair each right
    record with the reference of its left record, rows n..2n-1 each left
    record with the reference of its right one."""

    dataset: PairDataset
    #: The similarity features of both halves (NaN where missing), or None.
    similarity: tuple | None


def _reference_inputs(featurizer, texts, fields, reference):
    """The encoded reference pairs of the pairs whose texts are `texts`."""
    n = texts.n_pairs
    if reference == "missing":

        def replaced(column):
            return np.full(n, None, dtype=object)
    else:
        # A derangement (when n > 1): each record is replaced by the record on
        # the same side of another pair, the same for every column.
        order = np.random.default_rng(0).permutation(n)
        source = np.empty(n, dtype=np.int64)
        source[order] = np.roll(order, -1)

        def replaced(column):
            return texts[column][source]

    stacked = {}
    for field in fields:
        stacked[field.left] = np.concatenate([replaced(field.left), texts[field.left]])
        stacked[field.right] = np.concatenate(
            [texts[field.right], replaced(field.right)]
        )
    stacked = PairTexts(stacked, 2 * n)
    similarity = None
    if featurizer.plan_ is not None:
        similarity = featurizer._similarities(stacked)
    encoded = featurizer._encode(stacked, similarity)
    return _References(
        PairDataset(encoded),
        None if similarity is None else tuple(np.split(similarity, 2)),
    )


def _add_prior_attributions(result, log_proba, similarity, baselines, feature_fields):
    """Add the prior's Shapley values over the fields to each side's attributions."""
    # Both sides in one call: each call of the prior costs a start-up (its
    # trees' parallel regions), and a pair's values do not depend on the
    # other rows.
    weights = result["weights"].numpy()
    values = prior_shapley(
        log_proba,
        np.concatenate([similarity, similarity]),
        np.concatenate(baselines),
        feature_fields,
        weights=np.concatenate([weights, weights]),
    )
    for side, side_values in zip(("left", "right"), values.chunk(2)):
        result[side] = result[side] + side_values.to(result[side].dtype)


def _target_indices(target, n_pairs, classes):
    """The class index of `target` for each of `n_pairs` pairs; None for None."""
    if target is None:
        return None
    labels = (
        np.full(n_pairs, target, dtype=object)
        if np.ndim(target) == 0
        else column_or_1d(np.asarray(target, dtype=object))
    )
    if len(labels) != n_pairs:
        raise ValueError(
            f"target must be one label or one label per pair; got {len(labels)} "
            f"labels for {n_pairs} pairs."
        )
    lookup = {label: i for i, label in enumerate(classes.tolist())}
    index = np.array([lookup.get(label, -1) for label in labels])
    if (index < 0).any():
        unknown = pd.unique(labels[index < 0])[:5]
        raise ValueError(
            f"target holds labels {list(unknown)} that are not among the classes "
            f"{classes.tolist()}."
        )
    return index


# The columns of explain's frame (besides those of the index levels).
_EXPLANATION_COLUMNS = (
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
)


def _explanation_frame(X, results, texts, fields, classes, match, normalize):
    """The output frame of ``explain``: one row per (pair, side, field).

    `results` are the attributions of consecutive batches, `texts` the
    :class:`~skrecordpair._pairs.PairTexts` of consecutive chunks of `X`,
    `match` the index of the match class (None if unknown).
    """
    n_pairs, n_fields = len(X), len(fields)

    def cat(key, *width, dtype=torch.float64):
        if not results:  # no pair: empty columns of the usual types
            return torch.zeros((0, *width), dtype=dtype)
        return torch.cat([r[key] for r in results]).to(dtype)

    def column_text(column):
        if not texts:
            return np.empty(0, dtype=object)
        return np.concatenate([t[column] for t in texts])

    raw = torch.stack(
        [cat("left", n_fields), cat("right", n_fields)], dim=1
    )  # (n, 2, F)
    delta = torch.stack([cat("left_delta"), cat("right_delta")], dim=1)
    logits = cat("logits", len(classes))
    probability = torch.softmax(logits, dim=-1).numpy()
    predicted = probability.argmax(1)
    target = cat("target", dtype=torch.long)
    attribution = l2_normalize(raw) if normalize else raw
    # Per side, f(baseline) = f(pair) - sum of the attributions + delta, by
    # the definition of captum's delta; f is what the weights pick.
    explained = (logits * cat("weights", len(classes))).sum(-1)  # (n,)
    baseline_value = explained[:, None] - raw.sum(-1) + delta  # (n, 2)
    if match is None:
        evidence = torch.full_like(raw, float("nan"))
        baseline_log_odds = torch.full_like(baseline_value, float("nan"))
        baseline = np.full(n_pairs, "duplicate", dtype=object)
    else:
        # The explained class's log-odds is the match's, or its opposite.
        sign = torch.where(target == match, 1.0, -1.0).double()
        evidence = raw * sign[:, None, None]
        baseline_log_odds = baseline_value * sign[:, None]
        baseline = np.where(
            cat("reference", dtype=torch.bool).numpy(), "reference", "duplicate"
        ).astype(object)
    text = np.stack(
        [
            np.stack([column_text(f.column(side)) for f in fields], axis=1)
            if n_fields
            else np.empty((n_pairs, 0), dtype=object)
            for side in ("left", "right")
        ],
        axis=1,
    )  # (n, 2, F)
    repeat = 2 * n_fields
    # The pair's index label; with a MultiIndex (e.g. the (left_id,
    # right_id) of the pairs that link scores) also one column per level,
    # so that each row names its records.
    ids = {"pair": np.repeat(X.index.to_numpy(), repeat)}
    if isinstance(X.index, pd.MultiIndex):
        for i, name in enumerate(X.index.names):
            if (
                not isinstance(name, str)
                or name in _EXPLANATION_COLUMNS
                or (name in ids or list(X.index.names).count(name) > 1)
            ):
                name = f"pair_level_{i}"
            ids[name] = np.repeat(X.index.get_level_values(i).to_numpy(), repeat)

    def per_side(values):  # (n, 2) -> one value per row
        return np.repeat(values, n_fields, axis=1).reshape(-1)

    return pd.DataFrame(
        {
            **ids,
            "side": np.tile(np.repeat(["left", "right"], n_fields), n_pairs),
            "field": np.tile([f.name for f in fields], 2 * n_pairs),
            "text": text.reshape(-1),
            "attribution": attribution.numpy().reshape(-1),
            "raw_attribution": raw.numpy().reshape(-1),
            "target": np.repeat(classes[target.numpy()], repeat),
            "prediction": np.repeat(classes[predicted], repeat),
            "probability": np.repeat(probability.max(1), repeat),
            "convergence_delta": per_side(delta.numpy()),
            "evidence_for_match": evidence.numpy().reshape(-1),
            "baseline": np.repeat(baseline, repeat),
            "baseline_log_odds": per_side(baseline_log_odds.numpy()),
        }
    )


# Integrated gradients move one record at a time; the other one is constant along
# the path, so its record encoding is computed once and passed in (captum repeats
# it per step without gradients), instead of being re-encoded at every step.
# The similarity features are a second input when the head reads them.
def _forward(module, moving, with_similarity):
    """The explained value of each pair (its logits weighted by `weights`) as
    a function of the `moving` side's field encodings ("left" or "right"), and
    of the similarity features when the head reads them."""

    def forward(fe, *args):
        similarity, (other, mask1, mask2, prior, weights) = (
            (args[0], args[1:]) if with_similarity else (None, args)
        )
        moved = module.encode_record(fe, mask1 if moving == "left" else mask2)
        r1, r2 = (moved, other) if moving == "left" else (other, moved)
        logits = module.match_records(r1, mask1, r2, mask2, similarity, prior)
        return (logits * weights).sum(1)

    return forward


def _gradients(forward_fn, inputs, target_ind=None, additional_forward_args=None):
    """captum's ``gradient_func``: the gradients of the outputs' sum.

    captum differentiates each output on its own (``torch.unbind``), one
    autograd root per pair and step; each output depends on its own row only,
    so one root gives the same gradients without that per-row overhead.
    """
    with torch.enable_grad():
        outputs = forward_fn(*inputs, *additional_forward_args)
        return torch.autograd.grad(outputs.sum(), inputs)


def _integrated_gradients(forward):
    ig = IntegratedGradients(forward)
    ig.gradient_func = _gradients
    return ig


# Rows (pairs x steps) per forward pass: large enough for efficient matrix
# products, small enough for the activations to stay in cache.
INTERNAL_BATCH_SIZE = 1600


def integrated_gradients(
    module,
    batch,
    target,
    *,
    n_steps,
    similarity_baselines=None,
    similarity_fields=None,
    match=None,
    reference=None,
):
    """Field attributions of one collated batch, for both sides.

    Parameters
    ----------
    module : RecordPairNetwork
        The network, in eval mode.
    batch : dict of str to torch.Tensor
        A collated batch on the module's device (see ``collate_pairs``).
    target : torch.Tensor of shape (B,) or None
        Index of the class to explain, per pair; None explains the predicted
        class.
    n_steps : int
        Integration steps (Gauss-Legendre, captum's default).
    similarity_baselines : tuple of two torch.Tensor of shape (B, S), default=None
        When the batch has ``similarity``: the similarities of the right record
        with itself (the duplicate baseline of the left side) and of the left
        record with itself (that of the right side).
    similarity_fields : torch.Tensor of shape (S,), default=None
        The field index of each similarity feature.
    match : int or None, default=None
        The index of the match class of a binary task; None if unknown or
        with more than two classes (every pair then has the duplicate
        baseline).
    reference : dict of str to torch.Tensor, default=None
        With `match`: the collated reference pairs, 2B of them: the left
        records' references paired with the right records, then the left
        records paired with the right records' references. The predicted
        matches move from them.

    Returns
    -------
    dict
        ``left`` and ``right`` raw attributions (B, F), ``left_delta`` and
        ``right_delta`` convergence deltas (B,), ``logits`` (B, n_classes),
        ``target`` (B,), ``weights`` (B, n_classes), the logits' weights in
        the explained value, and ``reference`` (B,), whether the pair moved
        from the reference (else from the duplicate).
    """
    # cuDNN's RNN backward refuses eval mode; turning it off (rather than calling
    # .train(), which would switch dropout on) keeps the attributions deterministic.
    cudnn_off = (
        torch.backends.cudnn.flags(enabled=False)
        if batch["left"].is_cuda
        else contextlib.nullcontext()
    )
    with cudnn_off, _frozen(module):
        with torch.no_grad():
            fe1, mask1, fe2, mask2 = module.encode_fields(
                batch["left"],
                batch["right"],
                batch["token_words"],
                batch["token_chars"],
                batch.get("left_pretrained"),
                batch.get("right_pretrained"),
            )
            r1, r2 = module.encode_record(fe1, mask1), module.encode_record(fe2, mask2)
            prior, similarity = batch.get("prior"), batch.get("similarity")
            logits = module.match_records(r1, mask1, r2, mask2, similarity, prior)
            if target is None:
                target = logits.argmax(-1)
            weights = _explained_weights(target, logits.shape[-1])
            # Each side's baseline: the other record (a perfect duplicate) ...
            base_fe = {"left": fe2, "right": fe1}
            base_sim = (
                {"left": similarity_baselines[0], "right": similarity_baselines[1]}
                if similarity is not None
                else None
            )
            from_reference = torch.zeros(
                len(target), dtype=torch.bool, device=fe1.device
            )
            if reference is not None:
                # ... or, for a predicted match, the non-matching reference.
                from_reference = logits.argmax(-1) == match
                n = len(target)
                ref1, _, ref2, _ = module.encode_fields(
                    reference["left"],
                    reference["right"],
                    reference["token_words"],
                    reference["token_chars"],
                    reference.get("left_pretrained"),
                    reference.get("right_pretrained"),
                )
                pick = from_reference[:, None, None]
                base_fe = {
                    "left": torch.where(pick, ref1[:n], fe2),
                    "right": torch.where(pick, ref2[n:], fe1),
                }
                if base_sim is not None:
                    ref_sim = reference["similarity"]
                    base_sim = {
                        "left": torch.where(pick[:, 0], ref_sim[:n], base_sim["left"]),
                        "right": torch.where(
                            pick[:, 0], ref_sim[n:], base_sim["right"]
                        ),
                    }
        options = dict(
            n_steps=n_steps,
            return_convergence_delta=True,
            internal_batch_size=INTERNAL_BATCH_SIZE,
        )
        with_similarity = similarity is not None
        extra = (similarity,) if with_similarity else ()

        def attribute(moving):
            # The moving record goes from its baseline's encodings to its own;
            # the other record stays.
            own, other_record = (fe1, r2) if moving == "left" else (fe2, r1)
            base = (base_sim[moving],) if with_similarity else ()
            return _integrated_gradients(
                _forward(module, moving, with_similarity)
            ).attribute(
                (own, *extra),
                baselines=(base_fe[moving], *base),
                additional_forward_args=(other_record, mask1, mask2, prior, weights),
                **options,
            )

        (left, left_delta), (right, right_delta) = _each_side(
            partial(attribute, "left"), partial(attribute, "right"), fe1.device
        )
    (left, *left_sim), (right, *right_sim) = left, right
    left, right = left.sum(-1), right.sum(-1)
    if with_similarity:
        left = left.index_add(1, similarity_fields, left_sim[0])
        right = right.index_add(1, similarity_fields, right_sim[0])
    return {
        "left": left.detach(),
        "right": right.detach(),
        "left_delta": left_delta.detach(),
        "right_delta": right_delta.detach(),
        "logits": logits,
        "target": target,
        "weights": weights,
        "reference": from_reference,
    }


def _explained_weights(target, n_classes):
    """The weights of the logits in the explained value of each pair.

    With two classes, the log-odds of the target: its logit minus the other's
    (the probability depends on nothing else). With more, the target's logit:
    a log-odds would not split into the network's and the prior's shares.
    """
    weights = torch.nn.functional.one_hot(target, n_classes).float()
    if n_classes == 2:
        weights = 2 * weights - 1
    return weights


def _each_side(left, right, device):
    """The results of the calls `left()` and `right()`, run at once on a CPU
    with several threads, each on half of them.

    The network's operations are small, so torch's threads spend much of each
    one waiting for each other; two streams of work keep the cores busier
    (``benchmarks/inference_speed.py``). Each stream does the same operations
    as it would alone, on fewer threads.
    """
    n_threads = torch.get_num_threads()
    if device.type != "cpu" or n_threads < 2:
        return left(), right()

    def run(side):
        # Sets this worker's own OpenMP team, but also the default of threads
        # started later, which is put back below.
        torch.set_num_threads(n_threads // 2)
        return side()

    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(run, side) for side in (left, right)]
            return tuple(future.result() for future in futures)
    finally:
        torch.set_num_threads(n_threads)


@contextlib.contextmanager
def _frozen(module):
    """Switch off the gradients of `module`'s parameters for the block.

    Integrated gradients need the gradients of the inputs only; parameters that
    require gradients make autograd record and run their part of the backward
    pass too (up to a tenth of the time of `explain` on the Magellan data sets,
    ``benchmarks/network_speed.py``).
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def l2_normalize(attributions):
    """Divide each row by its L2 norm; rows of zeros stay zeros (identical records)."""
    norm = attributions.norm(dim=-1, keepdim=True)
    return torch.where(
        norm > 0, attributions / norm.clamp(min=1e-30), torch.zeros_like(attributions)
    )


# Fields up to which the prior's Shapley values are exact: every coalition of
# fields is evaluated (2 ** n_fields per pair, in one vectorised pass). Beyond,
# captum estimates them from PRIOR_SAMPLES random orderings of the fields.
EXACT_SHAPLEY_FIELDS = 8
PRIOR_SAMPLES = 50
# Rows (pairs x coalitions) per evaluation of the prior, to bound memory.
_COALITION_ROWS = 65536
# Similarities lie in [0, 1]; captum mixes inputs arithmetically, where NaN
# (a missing value) would spread, so it travels as this sentinel.
_NAN = -1.0


def prior_shapley(
    log_proba, similarity, baseline, fields, target=None, *, weights=None, seed=0
):
    """Field attributions of the prior model's log-probability of `target`.

    Shapley values of the fields (each field's similarity features form one
    player) between `baseline` and `similarity`. Whether exact or sampled,
    each pair's values add up exactly to the change of the log-probability.

    Parameters
    ----------
    log_proba : callable
        Maps an ndarray (n, S) of similarity features (NaN where missing) to
        log-probabilities (n, n_classes).
    similarity, baseline : ndarray of shape (B, S)
    fields : ndarray of shape (S,)
        The field index of each feature.
    target : torch.Tensor of shape (B,), default=None
        The class of each pair; ignored when `weights` is given.
    weights : ndarray of shape (B, n_classes), default=None
        Explain the weighted sum of the log-probabilities instead (e.g. +1 and
        -1: a log-odds). Shapley values are linear in the explained function.
    seed : int, default=0
        Seeds the sampled orderings (more than EXACT_SHAPLEY_FIELDS fields).

    Returns
    -------
    torch.Tensor of shape (B, n_fields)
    """
    n_fields = int(fields.max()) + 1
    if weights is None:
        target = target.cpu().numpy()
        weights = np.zeros((len(target), log_proba(similarity[:1]).shape[1]))
        weights[np.arange(len(target)), target] = 1.0
    weights = np.asarray(weights, dtype=np.float64)
    if n_fields <= EXACT_SHAPLEY_FIELDS:
        return torch.from_numpy(
            _exact_shapley(log_proba, similarity, baseline, fields, weights)
        )

    def forward(x):
        x = x.detach().cpu().numpy().copy()
        x[x == _NAN] = np.nan
        return torch.from_numpy(log_proba(x)).double()

    def as_input(x):
        return torch.from_numpy(np.where(np.isnan(x), _NAN, x))

    values = 0.0
    # One sampled run per class: the same seed gives the same orderings, so
    # the weighted sum is that of the weighted function.
    for c in np.flatnonzero((weights != 0).any(axis=0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            class_values = ShapleyValueSampling(forward).attribute(
                as_input(similarity),
                baselines=as_input(baseline),
                target=int(c),
                n_samples=PRIOR_SAMPLES,
                feature_mask=torch.as_tensor(fields).reshape(1, -1),
                perturbations_per_eval=n_fields,
            )
        values = values + class_values * torch.from_numpy(weights[:, c : c + 1])
    # Every feature of a field carries the field's whole value.
    return values[:, np.unique(fields, return_index=True)[1]]


def _exact_shapley(log_proba, similarity, baseline, fields, weights):
    """Exact Shapley values from the 2 ** n_fields coalitions of fields."""
    n_pairs, n_features = similarity.shape
    n_fields = int(fields.max()) + 1
    n_coalitions = 2**n_fields
    members = (np.arange(n_coalitions)[:, None] >> np.arange(n_fields)) & 1  # (C, F)
    switched = members[:, fields].astype(bool)  # (C, S): features taken from the pair
    value = np.empty((n_pairs, n_coalitions))
    block = max(1, _COALITION_ROWS // n_coalitions)
    for start in range(0, n_pairs, block):
        rows = slice(start, start + block)
        mixed = np.where(switched, similarity[rows, None, :], baseline[rows, None, :])
        out = log_proba(mixed.reshape(-1, n_features)).reshape(
            len(mixed), n_coalitions, -1
        )
        value[rows] = (out * weights[rows, None, :]).sum(-1)
    size = members.sum(1)
    # Weight of a coalition without field i: |S|! (F - |S| - 1)! / F!
    weight = np.array(
        [
            factorial(k) * factorial(n_fields - k - 1) / factorial(n_fields)
            if k < n_fields
            else 0.0
            for k in range(n_fields + 1)
        ]
    )[size]
    shapley = np.empty((n_pairs, n_fields))
    for i in range(n_fields):
        without = np.flatnonzero(members[:, i] == 0)
        gain = value[:, without | (1 << i)] - value[:, without]
        shapley[:, i] = gain @ weight[without]
    return shapley
