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


def _forward(module):
    def forward(fe1, fe2, mask1, mask2):
        return module.match(fe1, mask1, fe2, mask2)
    return forward


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
            logits = module.match(fe1, mask1, fe2, mask2)
        if target is None:
            target = logits.argmax(-1)
        ig = IntegratedGradients(_forward(module))
        left, left_delta = ig.attribute(
            (fe1, fe2), baselines=(fe2, fe2), target=target,
            additional_forward_args=(mask1, mask2), n_steps=n_steps,
            return_convergence_delta=True)
        right, right_delta = ig.attribute(
            (fe1, fe2), baselines=(fe1, fe1), target=target,
            additional_forward_args=(mask1, mask2), n_steps=n_steps,
            return_convergence_delta=True)
    return {
        "left": left[0].sum(-1).detach(),
        "right": right[1].sum(-1).detach(),
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
