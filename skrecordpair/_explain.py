"""Per-field integrated-gradients attributions (biome.text's record-pair explain).

For each side, integrated gradients of the target logit run over that side's
field encodings, from the *other* record's encodings to its own: the baseline is
"this record replaced by the other one", a perfect duplicate. Summed over the
encoding dimension, this gives one attribution per field. The embeddings and the
field encoder are not on the path: the encodings are computed first, without
gradients, in eval mode.
"""

from __future__ import annotations

import contextlib

import torch
from captum.attr import IntegratedGradients


# Integrated gradients move one record at a time; the other one is constant along
# the path, so its record encoding is computed once and passed in (captum repeats
# it per step without gradients), instead of being re-encoded at every step.
def _forward_left(module):
    def forward(fe1, r2, mask1, mask2):
        return module.match_records(module.encode_record(fe1, mask1), mask1, r2, mask2)
    return forward


def _forward_right(module):
    def forward(fe2, r1, mask1, mask2):
        return module.match_records(r1, mask1, module.encode_record(fe2, mask2), mask2)
    return forward

# Rows (pairs x steps) per forward pass: large enough for efficient matrix
# products, small enough for the activations to stay in cache.
INTERNAL_BATCH_SIZE = 1600


def integrated_gradients(module, batch, target, *, n_steps):
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
    with cudnn_off:
        with torch.no_grad():
            fe1, mask1, fe2, mask2 = module.encode_fields(**batch)
            r1, r2 = module.encode_record(fe1, mask1), module.encode_record(fe2, mask2)
            logits = module.match_records(r1, mask1, r2, mask2)
        if target is None:
            target = logits.argmax(-1)
        options = dict(target=target, n_steps=n_steps, return_convergence_delta=True,
                       internal_batch_size=INTERNAL_BATCH_SIZE)
        # Left: record 1 moves from record 2's encodings to its own, record 2 stays.
        left, left_delta = IntegratedGradients(_forward_left(module)).attribute(
            fe1, baselines=fe2, additional_forward_args=(r2, mask1, mask2), **options)
        right, right_delta = IntegratedGradients(_forward_right(module)).attribute(
            fe2, baselines=fe1, additional_forward_args=(r1, mask1, mask2), **options)
    return {
        "left": left.sum(-1).detach(),
        "right": right.sum(-1).detach(),
        "left_delta": left_delta.detach(),
        "right_delta": right_delta.detach(),
        "logits": logits,
        "target": target,
    }


def l2_normalize(attributions):
    """Divide each row by its L2 norm; rows of zeros stay zeros (identical records)."""
    norm = attributions.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, attributions / norm.clamp(min=1e-30),
                       torch.zeros_like(attributions))
