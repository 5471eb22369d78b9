"""Per-field attributions (biome.text's record-pair explain).

:func:`explain_pairs` explains a fitted ``RecordPairClassifier``'s predictions,
as scikit-learn's inspection functions take a fitted estimator; it is what
``RecordPairClassifier.explain`` runs.

For each side, integrated gradients of the target logit run over that side's
field encodings, from the *other* record's encodings to its own: the baseline is
"this record replaced by the other one", a perfect duplicate. Summed over the
encoding dimension, this gives one attribution per field. The embeddings and the
field encoder are not on the path: the encodings are computed first, without
gradients, in eval mode.

When the network also reads per-field similarity features, they move along the
same path, from the similarities of the perfect duplicate (the other record
compared with itself) to those of the pair, and each feature's attribution is
added to its field's.
"""

from __future__ import annotations

import contextlib
import numbers
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from math import factorial

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients, ShapleyValueSampling
from sklearn.utils.validation import column_or_1d
from skorch.utils import to_tensor

from ._data import PairDataset
from ._featurizer import as_network_input, chunks


def explain_pairs(clf, X, *, target=None, n_steps=50, normalize=True):
    """Per-field attributions of a fitted classifier's predictions on `X`.

    See :meth:`RecordPairClassifier.explain <skrecordpair.RecordPairClassifier.explain>`,
    which validates `X` and calls this.

    Parameters
    ----------
    clf : RecordPairClassifier
        The fitted classifier.
    X : pandas.DataFrame
        A pair frame with the columns of the fields `clf` was fitted on.
    target : label, array-like of labels or None, default=None
        The class to explain, for all pairs or per pair; None explains the
        predicted class.
    n_steps : int, default=50
        Integration steps.
    normalize : bool, default=True
        Whether the ``attribution`` column holds the L2-normalised values.

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
    targets = _target_indices(target, len(X), clf.classes_)
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
        similarity, baselines = inputs.similarity, inputs.baselines
        texts.append(inputs.texts)
        chunk_results = []
        offset = start
        for batch, _ in net.get_iterator(PairDataset(inputs.encoded), training=False):
            batch = to_tensor(batch, device)
            stop = start + len(batch["left"])
            batch_target = (None if targets is None else
                            torch.as_tensor(targets[start:stop], device=device))
            options = {}
            if featurizer.n_network_features:
                options = dict(
                    similarity_baselines=tuple(
                        to_tensor(as_network_input(b[start - offset:stop - offset]),
                                  device) for b in baselines),
                    similarity_fields=torch.as_tensor(fields_of_features, device=device))
            chunk_results.append({k: v.cpu() for k, v in integrated_gradients(
                module, batch, batch_target, n_steps=n_steps, **options).items()})
            start = stop
        if featurizer.prior_ is not None:
            _add_prior_attributions(chunk_results, featurizer.prior_log_proba,
                                    similarity, baselines, fields_of_features)
        results += chunk_results
    return _explanation_frame(X, results, texts, clf.fields_, clf.classes_, normalize)


def _add_prior_attributions(results, log_proba, similarity, baselines, feature_fields):
    """Add the prior's Shapley values over the fields to each side's attributions."""
    target = torch.cat([r["target"] for r in results])
    sides = [prior_shapley(log_proba, similarity, baseline, feature_fields, target)
             for baseline in baselines]
    start = 0
    for r in results:
        stop = start + len(r["target"])
        for side, values in zip(("left", "right"), sides):
            r[side] = r[side] + values[start:stop].to(r[side].dtype)
        start = stop


def _target_indices(target, n_pairs, classes):
    """The class index of `target` for each of `n_pairs` pairs; None for None."""
    if target is None:
        return None
    labels = (np.full(n_pairs, target, dtype=object) if np.ndim(target) == 0
              else column_or_1d(np.asarray(target, dtype=object)))
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
_EXPLANATION_COLUMNS = ("pair", "side", "field", "text", "attribution",
                        "raw_attribution", "target", "prediction", "probability",
                        "convergence_delta")


def _explanation_frame(X, results, texts, fields, classes, normalize):
    """The output frame of ``explain``: one row per (pair, side, field).

    `results` are the attributions of consecutive batches, `texts` the
    :class:`~skrecordpair._pairs.PairTexts` of consecutive chunks of `X`.
    """
    n_pairs, n_fields = len(X), len(fields)

    def cat(key, *width):
        if not results:  # no pair: empty columns of the usual types
            return torch.zeros((0, *width), dtype=torch.float64)
        return torch.cat([r[key] for r in results]).double()

    def column_text(column):
        if not texts:
            return np.empty(0, dtype=object)
        return np.concatenate([t[column] for t in texts])

    raw = torch.stack([cat("left", n_fields), cat("right", n_fields)],
                      dim=1)  # (n, 2, F)
    delta = torch.stack([cat("left_delta"), cat("right_delta")], dim=1)
    probability = torch.softmax(cat("logits", len(classes)), dim=-1).numpy()
    predicted = probability.argmax(1)
    attribution = l2_normalize(raw) if normalize else raw
    text = np.stack([
        np.stack([column_text(f.column(side)) for f in fields], axis=1)
        if n_fields else np.empty((n_pairs, 0), dtype=object)
        for side in ("left", "right")
    ], axis=1)  # (n, 2, F)
    repeat = 2 * n_fields
    # The pair's index label; with a MultiIndex (e.g. the (left_id,
    # right_id) of the pairs that link scores) also one column per level,
    # so that each row names its records.
    ids = {"pair": np.repeat(X.index.to_numpy(), repeat)}
    if isinstance(X.index, pd.MultiIndex):
        for i, name in enumerate(X.index.names):
            if not isinstance(name, str) or name in _EXPLANATION_COLUMNS or (
                    name in ids or list(X.index.names).count(name) > 1):
                name = f"pair_level_{i}"
            ids[name] = np.repeat(X.index.get_level_values(i).to_numpy(), repeat)
    return pd.DataFrame({
        **ids,
        "side": np.tile(np.repeat(["left", "right"], n_fields), n_pairs),
        "field": np.tile([f.name for f in fields], 2 * n_pairs),
        "text": text.reshape(-1),
        "attribution": attribution.numpy().reshape(-1),
        "raw_attribution": raw.numpy().reshape(-1),
        "target": np.repeat(classes[cat("target").long().numpy()], repeat),
        "prediction": np.repeat(classes[predicted], repeat),
        "probability": np.repeat(probability.max(1), repeat),
        "convergence_delta": np.repeat(delta.numpy(), n_fields, axis=1).reshape(-1),
    })


# Integrated gradients move one record at a time; the other one is constant along
# the path, so its record encoding is computed once and passed in (captum repeats
# it per step without gradients), instead of being re-encoded at every step.
# The similarity features are a second input when the head reads them.
def _forward(module, moving, with_similarity):
    """The target logit of each pair as a function of the `moving` side's field
    encodings ("left" or "right"), and of the similarity features when the head
    reads them."""
    def forward(fe, *args):
        similarity, (other, mask1, mask2, prior, target) = (
            (args[0], args[1:]) if with_similarity else (None, args))
        moved = module.encode_record(fe, mask1 if moving == "left" else mask2)
        r1, r2 = (moved, other) if moving == "left" else (other, moved)
        logits = module.match_records(r1, mask1, r2, mask2, similarity, prior)
        return logits.gather(1, target[:, None]).squeeze(1)
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


def integrated_gradients(module, batch, target, *, n_steps, similarity_baselines=None,
                         similarity_fields=None):
    """Field attributions of one collated batch, for both sides.

    Parameters
    ----------
    module : RecordPairNetwork
        The network, in eval mode.
    batch : dict of str to torch.Tensor
        A collated batch on the module's device (see ``collate_pairs``).
    target : torch.Tensor of shape (B,) or None
        Index of the logit to explain, per pair; None explains the predicted
        class.
    n_steps : int
        Integration steps (Gauss-Legendre, captum's default).
    similarity_baselines : tuple of two torch.Tensor of shape (B, S), default=None
        When the batch has ``similarity``: the similarities of the right record
        with itself (the baseline of the left side) and of the left record with
        itself (the baseline of the right side).
    similarity_fields : torch.Tensor of shape (S,), default=None
        The field index of each similarity feature.

    Returns
    -------
    dict
        ``left`` and ``right`` raw attributions (B, F), ``left_delta`` and
        ``right_delta`` convergence deltas (B,), ``logits`` (B, n_classes) and
        ``target`` (B,).
    """
    # cuDNN's RNN backward refuses eval mode; turning it off (rather than calling
    # .train(), which would switch dropout on) keeps the attributions deterministic.
    cudnn_off = (torch.backends.cudnn.flags(enabled=False)
                 if batch["left"].is_cuda else contextlib.nullcontext())
    with cudnn_off, _frozen(module):
        with torch.no_grad():
            fe1, mask1, fe2, mask2 = module.encode_fields(
                batch["left"], batch["right"], batch["token_words"], batch["token_chars"],
                batch.get("left_pretrained"), batch.get("right_pretrained"))
            r1, r2 = module.encode_record(fe1, mask1), module.encode_record(fe2, mask2)
            prior, similarity = batch.get("prior"), batch.get("similarity")
            logits = module.match_records(r1, mask1, r2, mask2, similarity, prior)
        if target is None:
            target = logits.argmax(-1)
        options = dict(n_steps=n_steps, return_convergence_delta=True,
                       internal_batch_size=INTERNAL_BATCH_SIZE)
        with_similarity = similarity is not None
        extra = left_base = right_base = ()
        if with_similarity:
            extra = (similarity,)
            left_base, right_base = (similarity_baselines[0],), (similarity_baselines[1],)

        def attribute(moving):
            # The moving record goes from the other one's encodings to its own;
            # the other record stays.
            own, other, other_record, base = ((fe1, fe2, r2, left_base) if moving == "left"
                                              else (fe2, fe1, r1, right_base))
            return _integrated_gradients(_forward(module, moving, with_similarity)).attribute(
                (own, *extra), baselines=(other, *base),
                additional_forward_args=(other_record, mask1, mask2, prior, target),
                **options)

        (left, left_delta), (right, right_delta) = _each_side(
            partial(attribute, "left"), partial(attribute, "right"), fe1.device)
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
    }


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
    return torch.where(norm > 0, attributions / norm.clamp(min=1e-30),
                       torch.zeros_like(attributions))


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


def prior_shapley(log_proba, similarity, baseline, fields, target, *, seed=0):
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
    target : torch.Tensor of shape (B,)
    seed : int, default=0
        Seeds the sampled orderings (more than EXACT_SHAPLEY_FIELDS fields).

    Returns
    -------
    torch.Tensor of shape (B, n_fields)
    """
    n_fields = int(fields.max()) + 1
    target = target.cpu().numpy()
    if n_fields <= EXACT_SHAPLEY_FIELDS:
        return torch.from_numpy(
            _exact_shapley(log_proba, similarity, baseline, fields, target))

    def forward(x):
        x = x.detach().cpu().numpy().copy()
        x[x == _NAN] = np.nan
        return torch.from_numpy(log_proba(x)).double()

    def as_input(x):
        return torch.from_numpy(np.where(np.isnan(x), _NAN, x))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        values = ShapleyValueSampling(forward).attribute(
            as_input(similarity), baselines=as_input(baseline),
            target=torch.from_numpy(target), n_samples=PRIOR_SAMPLES,
            feature_mask=torch.as_tensor(fields).reshape(1, -1),
            perturbations_per_eval=n_fields)
    # Every feature of a field carries the field's whole value.
    return values[:, np.unique(fields, return_index=True)[1]]


def _exact_shapley(log_proba, similarity, baseline, fields, target):
    """Exact Shapley values from the 2 ** n_fields coalitions of fields."""
    n_pairs, n_features = similarity.shape
    n_fields = int(fields.max()) + 1
    n_coalitions = 2 ** n_fields
    members = (np.arange(n_coalitions)[:, None] >> np.arange(n_fields)) & 1  # (C, F)
    switched = members[:, fields].astype(bool)  # (C, S): features taken from the pair
    value = np.empty((n_pairs, n_coalitions))
    block = max(1, _COALITION_ROWS // n_coalitions)
    for start in range(0, n_pairs, block):
        rows = slice(start, start + block)
        mixed = np.where(switched, similarity[rows, None, :], baseline[rows, None, :])
        out = log_proba(mixed.reshape(-1, n_features)).reshape(len(mixed), n_coalitions, -1)
        value[rows] = np.take_along_axis(out, target[rows, None, None], axis=2)[..., 0]
    size = members.sum(1)
    # Weight of a coalition without field i: |S|! (F - |S| - 1)! / F!
    weight = np.array([factorial(k) * factorial(n_fields - k - 1) / factorial(n_fields)
                       if k < n_fields else 0.0 for k in range(n_fields + 1)])[size]
    shapley = np.empty((n_pairs, n_fields))
    for i in range(n_fields):
        without = np.flatnonzero(members[:, i] == 0)
        gain = value[:, without | (1 << i)] - value[:, without]
        shapley[:, i] = gain @ weight[without]
    return shapley
