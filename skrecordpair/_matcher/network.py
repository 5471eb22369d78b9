"""The BiMPM record-pair network, in plain PyTorch.

A record is a sequence of fields and a field a sequence of tokens. Each token is
embedded (word embedding, character encoder, and optionally flags saying whether
the token occurs in the other record); a field encoder turns each field into one
vector; a bidirectional record encoder contextualises the field vectors; two
bilateral multi-perspective matchers (Wang et al., 2017) compare the two records
field against field, forwards and backwards; an aggregator pools each record's
matching vectors, and a feed-forward head turns both into logits. The same
modules encode both records (siamese weights).

This module imports nothing from pandas or scikit-learn (numpy only for a faster
row deduplication on the CPU).
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

_RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}
# Rows per block of a CNN over a table (see SequenceEncoder._cnn_over_table).
_CNN_BLOCK_ROWS = 2048
MATCHING_STRATEGIES = ("full", "maxpool", "attentive", "max_attentive")


def masked_max(x, mask, dim, keepdim=False):
    """Max over `dim` of the entries where `mask` is True (dtype minimum if none)."""
    return x.masked_fill(~mask, torch.finfo(x.dtype).min).amax(dim=dim, keepdim=keepdim)


def _pooled_both_ways(x, mask):
    """Masked max and mean of ``x`` (B, L1, L2, D) over L2, then over L1.

    Returns ``[max, mean]`` (B, L1, D) and ``[max, mean]`` (B, L2, D), ``mask``
    (B, L1, L2, 1) saying which entries count; the masked copies of ``x`` are
    shared by both directions.
    """
    # max() rather than amax(): the same values, and a backward pass that
    # routes each gradient to one entry instead of comparing every entry with
    # the maximum (integrated gradients run it at every step).
    filled = x.masked_fill(~mask, torch.finfo(x.dtype).min)
    kept = x * mask
    return (
        [filled.max(2).values, kept.sum(2) / mask.sum(2).clamp(min=1)],
        [filled.max(1).values, kept.sum(1) / mask.sum(1).clamp(min=1)],
    )


def unique_rows(x):
    """``torch.unique(x, dim=0, return_inverse=True)`` for a 2-D integer tensor.

    On the CPU, numpy sorts each row as one byte string, several times faster
    than torch, which compares rows element by element. The distinct rows come
    in a different (but fixed) order.
    """
    if x.device.type != "cpu" or x.shape[1] == 0:
        return torch.unique(x, dim=0, return_inverse=True)
    a = np.ascontiguousarray(x.numpy())
    rows = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return x[torch.from_numpy(first)], torch.from_numpy(inverse.reshape(-1))


class SequenceEncoder(nn.Module):
    """Encode padded sequences, to one vector each (seq2vec) or per step (seq2seq).

    Parameters
    ----------
    kind : {"gru", "lstm", "cnn"}
        Recurrent layers, or a 1-d convolution followed by a masked max-pool
        (``cnn`` is seq2vec only).
    input_size : int
    hidden_size : int
        Hidden units per direction (RNN) or number of filters (CNN).
    bidirectional : bool
    kernel_size : int
        Width of the convolution (``cnn`` only).

    Notes
    -----
    Padded steps never influence a result: RNNs run on packed sequences and the
    CNN's max-pool ignores padded positions. Empty sequences give zero vectors.
    """

    def __init__(
        self, kind, input_size, hidden_size, *, bidirectional=False, kernel_size=3
    ):
        super().__init__()
        self.kind = kind
        if kind == "cnn":
            # "same" padding: every output position sees only real neighbours or
            # zeros, exactly as if the batch had no extra padding.
            self.conv = nn.Conv1d(
                input_size, hidden_size, kernel_size, padding=kernel_size // 2
            )
            self.output_size = hidden_size
        else:
            self.rnn = _RNNS[kind](
                input_size, hidden_size, batch_first=True, bidirectional=bidirectional
            )
            self.output_size = hidden_size * (2 if bidirectional else 1)

    def _pack(self, x, mask):
        lengths = mask.sum(-1)
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        return packed, lengths

    def forward(self, x, mask, embed=None):
        """Return (N, output_size): one vector per sequence of ``x`` (N, T, E).

        With `embed`, ``x`` holds ids (N, T) and ``embed`` gives their vectors:
        a function of a tensor of ids (adding a last dimension E), an
        ``nn.Embedding``, or a tensor whose row i is the vector of id i. RNNs then
        embed the packed ids only: padded steps are never embedded, nor copied to
        pack. Given a table (a tensor or an ``nn.Embedding``), the CNN never builds
        the embedded tensor (see ``_cnn_over_table``), and a one-layer GRU
        outside autograd projects the table instead of every step (see
        ``_gru_over_table``).
        """
        if isinstance(embed, nn.Embedding):
            embed = embed.weight
        table = embed if isinstance(embed, torch.Tensor) else None
        if table is not None:
            # F.embedding's backward is much faster than indexing's index_put.
            embed = partial(F.embedding, weight=table)
        if self.kind == "cnn":
            if table is not None:
                return self._cnn_over_table(x, mask, table)
            if embed is not None:
                x = embed(x)
            x = (
                x * mask[..., None]
            )  # padded steps must look like the conv's zero padding
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)[:, : x.shape[1]]
            return self._pool(h, mask)
        if (
            table is not None
            and self.kind == "gru"
            and self.rnn.num_layers == 1
            and not torch.is_grad_enabled()
        ):
            return self._gru_over_table(x, mask, table)
        if bool(mask.all()):
            # No padding (always so over the fields of a record): the unpacked RNN
            # gives the same result, much faster, forwards and backwards.
            _, state = self.rnn(x if embed is None else embed(x))
            lengths = None
        else:
            packed, lengths = self._pack(x, mask)
            if embed is not None:
                packed = PackedSequence(
                    embed(packed.data),
                    packed.batch_sizes,
                    packed.sorted_indices,
                    packed.unsorted_indices,
                )
            _, state = self.rnn(packed)
        if isinstance(state, tuple):  # LSTM: (h, c)
            state = state[0]
        out = (
            torch.cat([state[-2], state[-1]], dim=-1)
            if self.rnn.bidirectional
            else state[-1]
        )
        return out if lengths is None else out * (lengths > 0)[:, None]

    def _gru_over_table(self, ids, mask, table):
        """The GRU's final states over the vectors ``table[ids]``, without autograd.

        The input projection is linear, so projecting the table's rows (the
        distinct tokens of a batch) replaces projecting every step of every
        sequence, which is most of a packed GRU's work on long fields. Sequences
        run longest first, so those still running at a step are a prefix.
        """
        lengths, order = mask.sum(-1).sort(descending=True, stable=True)
        ids = ids[order].t().contiguous()  # (T, N): each step's ids contiguous
        steps = torch.arange(ids.shape[0], device=ids.device)
        running = (lengths[None, :] > steps[:, None]).sum(1).tolist()
        h_size = self.rnn.hidden_size
        states = []
        for suffix in ("", "_reverse")[: 1 + self.rnn.bidirectional]:
            w_ih, w_hh, b_ih, b_hh = (
                getattr(self.rnn, f"{name}_l0{suffix}")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            # Both biases add to the reset and update gates; the new gate's hidden
            # bias sits inside r * (W_hn h + b_hn). The new gate's terms are
            # doubled: tanh(x) = 2 sigmoid(2x) - 1, and torch's sigmoid is several
            # times faster than its tanh on a CPU.
            inputs = F.linear(
                table, w_ih, b_ih + F.pad(b_hh[: 2 * h_size], (0, h_size))
            )
            inputs[:, 2 * h_size :] *= 2
            w_rz, w_n, b_n = (
                w_hh[: 2 * h_size].t(),
                2 * w_hh[2 * h_size :].t(),
                2 * b_hh[2 * h_size :],
            )
            h = table.new_zeros(ids.shape[1], h_size)
            # Backwards, a sequence starts at its last step with a zero state, as
            # it does packed.
            order_of_steps = range(len(running))
            for t in reversed(order_of_steps) if suffix else order_of_steps:
                n_running = running[t]
                if n_running == 0:
                    continue
                gates = F.embedding(ids[t, :n_running], inputs)
                h_t = h[:n_running]
                rz = torch.sigmoid(torch.addmm(gates[:, : 2 * h_size], h_t, w_rz))
                new = torch.sigmoid(
                    torch.addcmul(
                        gates[:, 2 * h_size :],
                        rz[:, :h_size],
                        torch.addmm(b_n, h_t, w_n),
                    )
                )
                new = new.mul_(2).sub_(1)
                h[:n_running] = torch.lerp(new, h_t, rz[:, h_size:])
            states.append(h)
        h = torch.cat(states, dim=-1)
        out = torch.empty_like(h)
        out[order] = h
        return out

    @staticmethod
    def _pool(h, mask):
        """The CNN's output: max over the valid steps of relu(h); 0 for empty rows."""
        return masked_max(torch.relu(h), mask[..., None], dim=1) * mask.any(
            -1, keepdim=True
        )

    def _cnn_over_table(self, ids, mask, table):
        """The CNN's vectors of the sequences ``table[ids]``, never embedded.

        A convolution of embeddings is a sum of lookups: tap j adds
        ``(table @ W_j.T)[ids[t + j]]``. Projecting the small table once replaces
        the (N T, k E) by (k E, H) product; id 0 is padding and counts as zeros.
        Rows go in blocks of similar extent, each cut to its longest row: most
        rows (tokens' characters) are far shorter than the longest of a batch,
        and small blocks stay in cache.
        """
        k = self.conv.kernel_size[0]
        taps = torch.einsum(
            "ve,hek->kvh", F.pad(table[1:], (0, 0, 1, 0)), self.conv.weight
        )
        steps = torch.arange(1, mask.shape[1] + 1, device=mask.device)
        extent, order = (mask * steps).amax(-1).sort()
        blocks = [table.new_zeros(0, self.output_size)]
        for start in range(0, len(ids), _CNN_BLOCK_ROWS):
            rows = order[start : start + _CNN_BLOCK_ROWS]
            n_steps = max(int(extent[start : start + _CNN_BLOCK_ROWS][-1]), 1)
            block_mask = mask[rows, :n_steps]
            padded = F.pad(ids[rows, :n_steps] * block_mask, (k // 2, k // 2))
            h = self.conv.bias
            for j in range(k):
                h = h + F.embedding(padded[:, j : j + n_steps], taps[j])
            blocks.append(self._pool(h, block_mask))
        blocks = torch.cat(blocks)
        out = torch.empty_like(blocks)
        out[order] = blocks
        return out

    def sequence(self, x, mask):
        """Return (N, T, output_size): one vector per step, zero at padded steps."""
        if bool(mask.all()):
            return self.rnn(x)[0]
        packed, _ = self._pack(x, mask)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out * mask[..., None]


def _cosine(dots, squared_norms1, squared_norms2):
    """Cosines from dot products and squared norms; 0 where a vector is 0."""
    # Adding 1e-16 leaves any float32 product above 1e-9 unchanged, and keeps
    # the gradient finite at 0 with a cheaper backward pass than a clamp.
    return dots * torch.rsqrt(squared_norms1 * squared_norms2 + 1e-16)


def multi_perspective_cosine(v1, targets, weights):
    """Plain and weighted cosines of ``v1`` (B, L, d) with each of ``targets``.

    ``targets`` holds S tensors (B, L or 1, d) and ``weights`` S matrices (l, d).
    Returns (B, L, S, 1 + l): for target s, the plain cosine, then one cosine per
    perspective k comparing ``weights[s][k] * v1`` with ``weights[s][k] * target``.
    """
    # cos(w*a, w*b) = sum(w^2 a b) / sqrt(sum(w^2 a^2) sum(w^2 b^2)): the sums of
    # every perspective, and the plain one (a column of ones), are one product
    # with the squared weights (S, d, 1 + l) per term, instead of materialising
    # (B, L, l, d) tensors or making one small product per target and term.
    w2 = torch.stack([(w * w).t() for w in weights])
    w2 = torch.cat([torch.ones_like(w2[..., :1]), w2], dim=-1)
    (b, n, d), s = v1.shape, len(targets)
    v2 = torch.stack([t.expand_as(v1) for t in targets]).reshape(s, b * n, d)
    v1 = v1.reshape(1, b * n, d)
    norms1 = (v1[0] * v1[0]) @ w2.transpose(0, 1).reshape(d, -1)  # (B L, S (1 + l))
    cosines = _cosine(
        (v1 * v2) @ w2, norms1.reshape(b * n, s, -1).transpose(0, 1), (v2 * v2) @ w2
    )
    return cosines.transpose(0, 1).reshape(b, n, s, -1)


def pairwise_cosine(v1, v2):
    """Cosines of every step of ``v1`` (B, L1, d) with every step of ``v2``: (B, L1, L2)."""
    n1 = (v1 * v1).sum(-1)
    n2 = (v2 * v2).sum(-1)
    return _cosine(v1 @ v2.transpose(1, 2), n1.unsqueeze(2), n2.unsqueeze(1))


def pairwise_multi_perspective_cosine(v1, v2, weights):
    """Weighted cosines of every step of ``v1`` (B, L1, d) with every step of ``v2``.

    Returns (B, L1, L2, l).
    """
    # sum_d w_kd^2 a_id b_jd as one product of the (B, L1, L2, d) element-wise
    # products with (d, l): about 4x faster than scaling each perspective apart.
    w2 = (weights * weights).t()  # (d, l)
    dots = (v1.unsqueeze(2) * v2.unsqueeze(1)) @ w2
    return _cosine(dots, ((v1 * v1) @ w2).unsqueeze(2), ((v2 * v2) @ w2).unsqueeze(1))


def _signed_clamp(x, eps=1e-13):
    """Push ``x`` away from 0 keeping its sign (0 counts as positive)."""
    sign = torch.where(x < 0, -1.0, 1.0).to(x.dtype)
    return sign * x.abs().clamp(min=eps)


class BiMpmMatching(nn.Module):
    """Bilateral multi-perspective matching of two sequences.

    Parameters
    ----------
    hidden_dim : int
        Size of each step's vector.
    num_perspectives : int
        Number of perspectives l (rows of each weight matrix).
    is_forward : bool
        Full matching compares each step with the other sequence's last valid step
        (forward) or its first step (backward).
    strategies : tuple of str
        Any of ``"full"``, ``"maxpool"``, ``"attentive"``, ``"max_attentive"``.
    share_weights_between_directions : bool
        Use the same weights to match record 1 against record 2 and back.
    variant : {"paper", "allennlp"}
        ``"paper"``: attentive vectors are the cosine-weighted mean of the other
        record's steps and max-attentive vectors its most similar step (Wang et
        al., 2017). ``"allennlp"``: AllenNLP's softmax over the hidden dimension
        and element-wise max (continuous in the inputs).
    """

    def __init__(
        self,
        hidden_dim,
        num_perspectives,
        *,
        is_forward,
        strategies,
        share_weights_between_directions=True,
        variant="paper",
    ):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.num_perspectives = num_perspectives
        self.is_forward = is_forward
        self.strategies = tuple(strategies)
        self.variant = variant
        for strategy in self.strategies:
            weight = nn.Parameter(torch.empty(num_perspectives, hidden_dim))
            nn.init.kaiming_normal_(weight)
            setattr(self, f"{strategy}_match_weights", weight)
            if strategy == "maxpool":
                continue
            if share_weights_between_directions:
                reversed_weight = weight
            else:
                reversed_weight = nn.Parameter(
                    torch.empty(num_perspectives, hidden_dim)
                )
                nn.init.kaiming_normal_(reversed_weight)
            setattr(self, f"{strategy}_match_weights_reversed", reversed_weight)

    @property
    def output_size(self):
        p = self.num_perspectives
        sizes = {
            "full": p + 1,
            "maxpool": 2 * p,
            "attentive": p + 1,
            "max_attentive": p + 1,
        }
        return 2 + sum(sizes[s] for s in self.strategies)

    def _weights(self, strategy, reverse):
        return getattr(
            self, f"{strategy}_match_weights" + ("_reversed" if reverse else "")
        )

    def forward(self, c1, mask1, c2, mask2):
        """Match ``c1`` (B, L1, d) and ``c2`` (B, L2, d) under their boolean masks.

        Returns the matching vectors of record 1 (B, L1, D) and record 2 (B, L2, D).
        Values at padded steps are meaningless; mask them downstream.
        """
        c1 = c1 * mask1[..., None]
        c2 = c2 * mask2[..., None]
        pair_mask = mask1[:, :, None] & mask2[:, None, :]  # (B, L1, L2)
        cosine = pairwise_cosine(c1, c2)
        out1, out2 = _pooled_both_ways(cosine[..., None], pair_mask[..., None])
        # The strategies that compare each step with one vector of the other
        # record are computed together.
        vector = [s for s in self.strategies if s != "maxpool"]
        if vector:
            targets1, targets2 = zip(
                *(
                    self._targets(s, cosine, pair_mask, c1, mask1, c2, mask2)
                    for s in vector
                )
            )
            cosines1 = multi_perspective_cosine(
                c1, targets1, [self._weights(s, False) for s in vector]
            )
            cosines2 = multi_perspective_cosine(
                c2, targets2, [self._weights(s, True) for s in vector]
            )
            # unbind's backward stacks the gradients in one operation, where
            # indexing each strategy would add a zero-padded copy per strategy.
            per_strategy1, per_strategy2 = cosines1.unbind(2), cosines2.unbind(2)
        for strategy in self.strategies:
            if strategy == "maxpool":
                pooled1, pooled2 = _pooled_both_ways(
                    pairwise_multi_perspective_cosine(
                        c1, c2, self.maxpool_match_weights
                    ),
                    pair_mask[..., None],
                )
                out1 += pooled1
                out2 += pooled2
            else:
                out1.append(per_strategy1[vector.index(strategy)])
                out2.append(per_strategy2[vector.index(strategy)])
        return torch.cat(out1, dim=-1), torch.cat(out2, dim=-1)

    def _targets(self, strategy, cosine, pair_mask, c1, mask1, c2, mask2):
        """What the steps of either record are compared with under `strategy`."""
        if strategy == "full":
            return self._last(c2, mask2), self._last(c1, mask1)
        if strategy == "attentive":
            return self._attentive(cosine, pair_mask, c1, c2)
        return self._max_attentive(cosine, pair_mask, c1, c2)

    def _last(self, c, mask):
        if not self.is_forward:
            return c[:, :1]
        last = (mask.sum(-1) - 1).clamp(min=0)
        return c.gather(1, last[:, None, None].expand(-1, 1, c.shape[-1]))

    def _attentive(self, cosine, pair_mask, c1, c2):
        alpha = cosine * pair_mask
        sum2 = alpha @ c2  # (B, L1, d): each step of 1 attends over 2
        sum1 = alpha.transpose(1, 2) @ c1  # (B, L2, d)
        if self.variant == "allennlp":
            return (
                _masked_softmax(sum2, pair_mask.any(2, keepdim=True)),
                _masked_softmax(sum1, pair_mask.any(1)[..., None]),
            )
        # Cosines can be negative: a sign-preserving clamp keeps the mean finite.
        return (
            sum2 / _signed_clamp(alpha.sum(2, keepdim=True)),
            sum1 / _signed_clamp(alpha.sum(1)[..., None]),
        )

    def _max_attentive(self, cosine, pair_mask, c1, c2):
        if self.variant == "allennlp":
            weighted2 = cosine[..., None] * c2[:, None]  # (B, L1, L2, d)
            weighted1 = cosine[..., None] * c1[:, :, None]
            m = pair_mask[..., None]
            return masked_max(weighted2, m, 2), masked_max(weighted1, m, 1)
        scores = cosine.masked_fill(~pair_mask, float("-inf"))
        best2 = scores.argmax(2)  # (B, L1): for a fully masked row, step 0 (zeros)
        best1 = scores.argmax(1)  # (B, L2)
        d = c1.shape[-1]
        return (
            c2.gather(1, best2[..., None].expand(-1, -1, d)),
            c1.gather(1, best1[..., None].expand(-1, -1, d)),
        )


def _occurs_in(ids, other):
    """Whether each id of ``ids`` (..., T1) occurs in the same row of ``other``
    (..., T2); 0 (padding) occurs nowhere.

    A binary search in the sorted rows of ``other``: comparing all pairs of
    tokens, (..., T1, T2), is several times slower on long fields.
    """
    sorted_other = other.sort(-1).values
    slot = torch.searchsorted(sorted_other, ids).clamp(max=other.shape[-1] - 1)
    return (sorted_other.gather(-1, slot) == ids) & (ids != 0)


def _each_record(encode, x1, mask1, x2, mask2):
    """``encode(x, mask)`` of both records; one call over both when they have as
    many fields (fewer, larger matrix products; each row is encoded alone)."""
    if x1.shape[1] == x2.shape[1]:
        return encode(torch.cat([x1, x2]), torch.cat([mask1, mask2])).chunk(2)
    return encode(x1, mask1), encode(x2, mask2)


def _masked_softmax(x, mask):
    probs = torch.softmax(x * mask, dim=-1) * mask
    return probs / (probs.sum(-1, keepdim=True) + 1e-13)


class RecordPairNetwork(nn.Module):
    """The BiMPM record-pair network.

    Parameters
    ----------
    n_words : int
        Size of the word vocabulary (ids 0 and 1 are padding and unknown).
    n_chars : int
        Size of the character vocabulary.
    n_classes : int
        Number of output logits.
    word_dim : int, default=64
        Word embedding size; 0 disables word embeddings.
    char_dim : int, default=32
        Character embedding size.
    char_encoder : {"cnn", "gru", "lstm"} or None, default="cnn"
        Per-token character encoder; None disables character features. RNNs are
        bidirectional.
    char_hidden_size : int, default=32
        Filters (CNN) or hidden units per direction (RNN) of the char encoder.
    token_match_features : bool, default=True
        Append two flags to each token vector: the token occurs anywhere in the
        other record, and in the other record's field at the same position.
    field_encoder : {"gru", "lstm", "cnn"}, default="gru"
        Seq2vec encoder turning a field's tokens into one vector.
    field_hidden_size : int, default=64
    field_bidirectional : bool, default=False
    record_encoder : {"gru", "lstm"}, default="gru"
        Bidirectional seq2seq encoder over a record's fields.
    record_hidden_size : int, default=32
        Hidden units per direction; each matcher sees one direction.
    num_perspectives : int, default=10
    forward_matching : tuple of str, default=("maxpool", "attentive", "max_attentive")
        Strategies of the forward matcher; empty disables it.
    backward_matching : tuple of str, default=MATCHING_STRATEGIES
        Strategies of the backward matcher; empty disables it, and the forward
        matcher then sees the whole record encoding.
    matching_variant : {"paper", "allennlp"}, default="paper"
    share_matching_weights : bool, default=True
    aggregator : {"gru", "lstm", "cnn"}, default="gru"
        Seq2vec encoder pooling each record's matching vectors.
    aggregator_hidden_size : int, default=32
    aggregator_bidirectional : bool, default=True
    hidden_layer_sizes : tuple of int, default=(32,)
        Feed-forward layers (ReLU, dropout) before the output layer.
    dropout : float, default=0.1
    n_similarity_features : int, default=0
        Length of the per-pair similarity vector that ``forward`` receives as
        ``similarity`` and that the classifier head reads beside the two
        aggregated records; 0 for none.
    pretrained_dim : int, default=0
        Size of the contextual subword vectors of a pre-trained text encoder
        (see ``FrozenTextEncoder``) that ``forward`` receives as
        ``left_pretrained`` (B, F, T, D) and ``right_pretrained`` (B, F, T, D):
        each field value's subwords, zero-padded (an all-zero vector is
        padding); 0 for none. They need aligned records (field i of the left
        record is field i of the right one). The vectors are projected (linear,
        tanh) to `pretrained_hidden_size`; then, per field, a token-level
        bilateral matcher (attentive and max-attentive, Wang et al. 2017)
        compares the left value's subwords with the right value's, and each
        field's encoding is joined by its value's mean projected vector and
        the max and mean over its subwords of their matching vectors. The
        record encoder and the field-level matchers then see them.
    pretrained_hidden_size : int, default=64
        Size of a projected subword vector.
    """

    def __init__(
        self,
        n_words,
        n_chars,
        n_classes,
        *,
        word_dim=64,
        char_dim=32,
        char_encoder="cnn",
        char_hidden_size=32,
        token_match_features=True,
        field_encoder="gru",
        field_hidden_size=64,
        field_bidirectional=False,
        record_encoder="gru",
        record_hidden_size=32,
        num_perspectives=10,
        forward_matching=("maxpool", "attentive", "max_attentive"),
        backward_matching=MATCHING_STRATEGIES,
        matching_variant="paper",
        share_matching_weights=True,
        aggregator="gru",
        aggregator_hidden_size=32,
        aggregator_bidirectional=True,
        hidden_layer_sizes=(32,),
        dropout=0.1,
        n_similarity_features=0,
        pretrained_dim=0,
        pretrained_hidden_size=64,
    ):
        super().__init__()
        token_size = 0
        self.word_embedding = None
        if word_dim:
            self.word_embedding = nn.Embedding(n_words, word_dim, padding_idx=0)
            token_size += word_dim
        self.char_embedding = self.char_encoder = None
        if char_encoder is not None:
            self.char_embedding = nn.Embedding(n_chars, char_dim, padding_idx=0)
            self.char_encoder = SequenceEncoder(
                char_encoder, char_dim, char_hidden_size, bidirectional=True
            )
            token_size += self.char_encoder.output_size
        if token_size == 0:
            raise ValueError("The network needs word embeddings or a char encoder.")
        self.token_match_features = token_match_features
        token_size += 2 if token_match_features else 0
        self.field_encoder = SequenceEncoder(
            field_encoder,
            token_size,
            field_hidden_size,
            bidirectional=field_bidirectional,
        )
        field_size = self.field_encoder.output_size
        self.pretrained_dim = pretrained_dim
        self.pretrained_projection = self.token_matcher = None
        if pretrained_dim:
            self.pretrained_projection = nn.Linear(
                pretrained_dim, pretrained_hidden_size
            )
            # maxpool would build (B F, T1, T2, hidden) tensors: the attentive
            # strategies compare each subword with one vector of the other value.
            self.token_matcher = BiMpmMatching(
                pretrained_hidden_size,
                num_perspectives,
                is_forward=True,
                strategies=("attentive", "max_attentive"),
                share_weights_between_directions=share_matching_weights,
                variant=matching_variant,
            )
            field_size += pretrained_hidden_size + 2 * self.token_matcher.output_size
        self.record_encoder = SequenceEncoder(
            record_encoder, field_size, record_hidden_size, bidirectional=True
        )
        record_size = self.record_encoder.output_size
        self.split_directions = bool(backward_matching)
        matcher_dim = record_size // 2 if self.split_directions else record_size
        matching_size = 0
        self.matcher_forward = self.matcher_backward = None
        if forward_matching:
            self.matcher_forward = BiMpmMatching(
                matcher_dim,
                num_perspectives,
                is_forward=True,
                strategies=forward_matching,
                share_weights_between_directions=share_matching_weights,
                variant=matching_variant,
            )
            matching_size += self.matcher_forward.output_size
        if backward_matching:
            self.matcher_backward = BiMpmMatching(
                matcher_dim,
                num_perspectives,
                is_forward=False,
                strategies=backward_matching,
                share_weights_between_directions=share_matching_weights,
                variant=matching_variant,
            )
            matching_size += self.matcher_backward.output_size
        if matching_size == 0:
            raise ValueError(
                "At least one of forward_matching and backward_matching "
                "must list a strategy."
            )
        self.aggregator = SequenceEncoder(
            aggregator,
            matching_size,
            aggregator_hidden_size,
            bidirectional=aggregator_bidirectional,
        )
        self.n_similarity_features = n_similarity_features
        layers = []
        size = 2 * self.aggregator.output_size + n_similarity_features
        for hidden in hidden_layer_sizes:
            layers += [nn.Linear(size, hidden), nn.ReLU(), nn.Dropout(dropout)]
            size = hidden
        self.classifier_feedforward = nn.Sequential(*layers)
        self.output_layer = nn.Linear(size, n_classes)
        self.dropout = nn.Dropout(dropout)
        _initialize(self)

    def embed_tokens(self, token_words, token_chars):
        """Vectors of the batch's distinct tokens: (U, E).

        ``token_words`` (U,) and ``token_chars`` (U, C) may carry extra leading
        dimensions, which are flattened into U.
        """
        token_words = token_words.reshape(-1)
        token_chars = token_chars.reshape(-1, token_chars.shape[-1])
        parts = []
        if self.word_embedding is not None:
            parts.append(self.word_embedding(token_words))
        if self.char_encoder is not None:
            parts.append(
                self.char_encoder(token_chars, token_chars != 0, self.char_embedding)
            )
        return torch.cat(parts, dim=-1)

    def _match_flags(self, left, right):
        """Per token: does it occur in the other record / its aligned field?"""
        b = left.shape[0]
        n_ids = int(max(left.max(), right.max())) + 1
        aligned = left.shape[1] == right.shape[1]
        out = []
        for ids, other in ((left, right), (right, left)):
            # Which of the batch's local token ids occur in each other record:
            # (B, n_ids), where comparing all token pairs would be (B, F1 T1, F2 T2).
            present = torch.zeros(b, n_ids, dtype=torch.bool, device=ids.device)
            present.scatter_(1, other.reshape(b, -1), True)
            present[:, 0] = False
            anywhere = present.gather(1, ids.reshape(b, -1)).reshape(ids.shape)
            in_field = _occurs_in(ids, other) if aligned else torch.zeros_like(anywhere)
            out.append(torch.stack([anywhere, in_field], -1))
        return tuple(out)

    def encode_fields(
        self,
        left,
        right,
        token_words,
        token_chars,
        left_pretrained=None,
        right_pretrained=None,
    ):
        """Field encodings and field masks of both records.

        Returns ``(fe1, mask1, fe2, mask2)`` with ``fe`` (B, F, Hf) and ``mask``
        (B, F) bool. These are the inputs that ``explain`` attributes to. With
        ``pretrained_dim``, each field's encoding is joined by what its value's
        pre-trained subword vectors say (see the class's parameters).
        """
        vectors = self.embed_tokens(token_words, token_chars)
        (b, f1, t1), (_, f2, t2) = left.shape, right.shape
        # Each field of both records is one row of token keys: id * 4 + the two
        # match flags as bits; 0 is padding.
        keys = [left * 4, right * 4]
        if self.token_match_features:
            for key, flag in zip(keys, self._match_flags(left, right)):
                key += flag[..., 0] * 2 + flag[..., 1]
        keys = torch.cat(
            [F.pad(key, (0, max(t1, t2) - key.shape[-1])).flatten(0, 1) for key in keys]
        )
        inverse = None
        if not self.training:
            # A record meets several candidates, and brands or categories recur:
            # at inference, each distinct field (with its flags) is encoded once.
            # Training keeps one row per field, so dropout stays independent.
            keys, inverse = unique_rows(keys)

        def embed(keys):
            # F.embedding's backward is much faster than indexing's index_put.
            embedded = F.embedding(keys // 4, vectors)
            if self.token_match_features:
                bits = torch.stack([keys // 2 % 2, keys % 2], -1)
                embedded = torch.cat([embedded, bits.to(embedded.dtype)], dim=-1)
            return self.dropout(embedded)

        if not self.training:
            # Every key's vector, as a table: the field encoder can then work on
            # the batch's distinct tokens rather than on every token.
            embed = embed(torch.arange(4 * len(vectors), device=keys.device))
        encoded = self.field_encoder(keys, keys != 0, embed)
        if inverse is not None:
            encoded = encoded[inverse]
        encoded = self.dropout(encoded)
        fe1, fe2 = (
            encoded[: b * f1].reshape(b, f1, -1),
            encoded[b * f1 :].reshape(b, f2, -1),
        )
        if self.pretrained_projection is not None:
            fe1, fe2 = self._with_pretrained(
                fe1, left_pretrained, fe2, right_pretrained
            )
        return fe1, (left != 0).any(-1), fe2, (right != 0).any(-1)

    def _with_pretrained(self, fe1, vectors1, fe2, vectors2):
        """Field encodings joined by what the subword vectors of their values say.

        Per field: the mean projected subword vector of its value, and the max
        and mean over its subwords of their token-level matching vectors
        against the other record's value of the same field (zeros for a
        missing value).
        """
        (b, f1, _), f2 = fe1.shape, fe2.shape[1]
        for side, vectors, f in (("left", vectors1, f1), ("right", vectors2, f2)):
            if (
                vectors is None
                or vectors.dim() != 4
                or tuple(vectors.shape[:2]) != (b, f)
                or vectors.shape[-1] != self.pretrained_dim
            ):
                got = None if vectors is None else tuple(vectors.shape)
                raise ValueError(
                    f"The network expects {side}_pretrained of shape ({b}, {f}, tokens, "
                    f"{self.pretrained_dim}) (pairs, fields, subwords, pretrained_dim); "
                    f"got {got}."
                )
        if f1 != f2:
            raise ValueError(
                "Pre-trained subword vectors need aligned records (as many "
                f"fields on both sides); got {f1} and {f2} fields."
            )
        masks = [(v != 0).any(-1).flatten(0, 1) for v in (vectors1, vectors2)]
        # One projection over both sides' subwords (B F, T, hidden).
        t1 = vectors1.shape[2]
        width = max(t1, vectors2.shape[2])
        both = torch.cat(
            [
                F.pad(v, (0, 0, 0, width - v.shape[2])).flatten(0, 1)
                for v in (vectors1, vectors2)
            ]
        ).to(fe1.dtype)
        projected = self.dropout(torch.tanh(self.pretrained_projection(both)))
        p1, p2 = projected.chunk(2)
        p1, p2 = p1[:, :t1], p2[:, : vectors2.shape[2]]
        m1, m2 = self.token_matcher(p1, masks[0], p2, masks[1])
        # With one value missing, the matching vectors hold the dtype's minimum
        # (a max over nothing): they say nothing, as for two missing values.
        both = (masks[0].any(-1) & masks[1].any(-1))[:, None, None]
        m1, m2 = torch.where(both, m1, 0), torch.where(both, m2, 0)
        out = []
        for fe, p, m, mask in ((fe1, p1, m1, masks[0]), (fe2, p2, m2, masks[1])):
            weights = mask[..., None].to(p.dtype)
            count = weights.sum(1).clamp(min=1)
            present = mask.any(-1, keepdim=True)
            pooled = torch.cat(
                [
                    (p * weights).sum(1) / count,
                    masked_max(m, mask[..., None], 1) * present,
                    (m * weights).sum(1) / count,
                ],
                dim=-1,
            )
            out.append(torch.cat([fe, pooled.reshape(b, fe.shape[1], -1)], dim=-1))
        return tuple(out)

    def match(self, fe1, mask1, fe2, mask2, similarity=None, prior=None):
        """Logits from field encodings: record encoder, matching, aggregation, head."""
        r1, r2 = _each_record(self.encode_record, fe1, mask1, fe2, mask2)
        return self.match_records(r1, mask1, r2, mask2, similarity, prior)

    def encode_record(self, fe, mask):
        """Contextualise a record's field encodings (B, F, Hf) -> (B, F, Hr)."""
        return self.dropout(self.record_encoder.sequence(fe, mask))

    def match_records(self, r1, mask1, r2, mask2, similarity=None, prior=None):
        """Logits from record encodings: matching, aggregation, head.

        ``similarity`` (B, S) joins the head's input; ``prior`` (B, n_classes),
        log-probabilities of another model, is added to the logits, so that the
        network learns a correction to that model.
        """
        if self.split_directions:
            half = r1.shape[-1] // 2
            directions = [
                (self.matcher_forward, r1[..., :half], r2[..., :half]),
                (self.matcher_backward, r1[..., half:], r2[..., half:]),
            ]
        else:
            directions = [(self.matcher_forward, r1, r2)]
        m1, m2 = [], []
        for matcher, a, b in directions:
            if matcher is not None:
                x1, x2 = matcher(a, mask1, b, mask2)
                m1.append(x1)
                m2.append(x2)
        agg1, agg2 = _each_record(
            self._aggregate, torch.cat(m1, -1), mask1, torch.cat(m2, -1), mask2
        )
        features = [agg1, agg2]
        if self.n_similarity_features:
            if similarity is None or similarity.shape[-1] != self.n_similarity_features:
                got = None if similarity is None else tuple(similarity.shape)
                raise ValueError(
                    f"The network expects {self.n_similarity_features} "
                    f"similarity features per pair; got {got}."
                )
            features.append(similarity)
        hidden = self.classifier_feedforward(torch.cat(features, dim=-1))
        logits = self.output_layer(hidden)
        return logits if prior is None else logits + prior

    def _aggregate(self, m, mask):
        """Pool a record's matching vectors (B, F, D) into one vector per record."""
        return self.dropout(self.aggregator(self.dropout(m), mask))

    def forward(
        self,
        left,
        right,
        token_words,
        token_chars,
        similarity=None,
        prior=None,
        left_pretrained=None,
        right_pretrained=None,
    ):
        """Logits (B, n_classes) of a collated batch (see ``collate_pairs``).

        ``left_pretrained`` and ``right_pretrained`` (B, F, T, pretrained_dim)
        are read only with ``pretrained_dim``.
        """
        return self.match(
            *self.encode_fields(
                left, right, token_words, token_chars, left_pretrained, right_pretrained
            ),
            similarity,
            prior,
        )


_INIT_RULES = [
    (r"(output_layer|classifier_feedforward).*weight", nn.init.xavier_normal_),
    (r".*weight_ih.*", nn.init.xavier_normal_),
    (r".*weight_hh.*", nn.init.orthogonal_),
    (r".*bias.*", nn.init.zeros_),
]


def _initialize(module):
    """biome.text's initialisation: xavier for input weights, orthogonal recurrences."""
    for name, param in module.named_parameters():
        for pattern, init in _INIT_RULES:
            if re.fullmatch(pattern, name):
                init(param)
                break
