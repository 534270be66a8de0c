r"""Next-item recommenders: a self-attentive model (SASRec) and two count-based baselines.

All three read a user's history as left-padded item ids, (B, T) with 0 =
padding and the most recent item in the last column, and score every item of
the catalogue, (B, V + 1), column ``i`` for item ``i``; column 0 (padding) is
``-inf`` so that it is never recommended.

- :class:`PopularityRecommender` -- the same list for everyone: items by how
  often they occur in the training sessions.
- :class:`MarkovRecommender` -- a first-order Markov chain: how often each item
  followed the history's last item in training, smoothed towards popularity.
- :class:`SASRec` -- the self-attentive sequential recommender of Kang and
  McAuley (2018): item embeddings plus learned positions, causal Transformer
  blocks, and the score of item i is the dot product of the last position's
  state with item i's embedding.
- :class:`GRU4Rec` -- a recurrent baseline in the style of Hidasi et al.
  (2016): a GRU reads the history, its state scores the items.
- :class:`MeanPoolRec` -- the order-free baseline: the running mean of the
  history's item embeddings, through a linear layer, scores the items.

The three networks share the item table between input and output (the score
of item i is a dot product with its embedding), train with
:func:`next_item_loss` at every position, and score with ``.score(history)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import check_ids, shape_str
from attnlab.layers import LearnedPositionalEmbedding, TransformerBlock
from attnlab.masks import causal_mask
from attnlab.train import sequence_loss

__all__ = [
    "SASRecConfig",
    "SASRec",
    "next_item_loss",
    "PopularityRecommender",
    "MarkovRecommender",
    "HistoryRecConfig",
    "GRU4Rec",
    "MeanPoolRec",
]


def _check_history(ids: object, num_items: int, name: str = "history") -> torch.Tensor:
    return check_ids(ids, name, num_items + 1, what="item", bounds=f"[0, V={num_items}]")


def _no_padding(scores: torch.Tensor) -> torch.Tensor:
    """Scores (..., V + 1) with the padding column set to -inf."""
    pad = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
    pad[0] = True
    return scores.masked_fill(pad, float("-inf"))


# ------------------------------------------------------------------------ baselines


class PopularityRecommender:
    """Recommend the items that were most frequent in the training sessions, to everyone.

    Args:
        num_items: V.

    Example:
        >>> pop = PopularityRecommender(3).fit(torch.tensor([[0, 1, 2, 2], [3, 2, 1, 2]]))
        >>> pop.score(torch.tensor([[0, 1]]))
        tensor([[  -inf, 0.2857, 0.5714, 0.1429]])
    """

    def __init__(self, num_items: int) -> None:
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
        self.num_items = num_items
        self.popularity: torch.Tensor | None = None  # (V + 1,) frequencies, 0 at padding

    def fit(self, items: torch.Tensor) -> PopularityRecommender:
        """Count the items of the training sessions (N, L), 0 = padding; returns self."""
        items = _check_history(items, self.num_items, "items")
        counts = torch.bincount(items.flatten(), minlength=self.num_items + 1).double()
        counts[0] = 0.0
        if counts.sum() == 0:
            raise ValueError("items holds no item (only padding): nothing to count")
        self.popularity = counts / counts.sum()
        return self

    def score(self, history: torch.Tensor) -> torch.Tensor:
        """The popularity of every item, the same for each history.

        Shape:
            history (B, T) -> scores (B, V + 1), column 0 = -inf.
        """
        if self.popularity is None:
            raise RuntimeError("call fit() before score()")
        history = _check_history(history, self.num_items)
        scores = self.popularity.float().expand(history.shape[0], -1)  # (B, V + 1)
        return _no_padding(scores)


class MarkovRecommender:
    r"""A first-order Markov chain over items, with counts smoothed towards popularity.

    .. math::

        \operatorname{score}(j \mid i) = \frac{n_{ij} + \beta\, p_j}{n_i + \beta}

    with :math:`n_{ij}` the number of times item j directly followed item i in
    the training sessions, :math:`n_i = \sum_j n_{ij}`, :math:`p_j` item j's
    popularity and :math:`\beta` the ``smoothing``. An item never seen as a
    predecessor (and an empty history) falls back to popularity.

    Args:
        num_items: V.
        smoothing: :math:`\beta`, in pseudo-counts (0: raw transition frequencies).

    Example:
        >>> mc = MarkovRecommender(3, smoothing=0.0).fit(torch.tensor([[1, 2, 3], [0, 1, 2]]))
        >>> mc.score(torch.tensor([[3, 1]]))  # after item 1 always came item 2
        tensor([[-inf, 0., 1., 0.]])
    """

    def __init__(self, num_items: int, smoothing: float = 1.0) -> None:
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
        if not smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing!r}")
        self.num_items = num_items
        self.smoothing = float(smoothing)
        self.transitions: torch.Tensor | None = None  # (V + 1, V + 1) smoothed probabilities

    def fit(self, items: torch.Tensor) -> MarkovRecommender:
        """Count the transitions of the training sessions (N, L), 0 = padding; returns self."""
        items = _check_history(items, self.num_items, "items")
        V1 = self.num_items + 1
        popularity = PopularityRecommender(self.num_items).fit(items).popularity
        assert popularity is not None
        prev, nxt = items[:, :-1].flatten(), items[:, 1:].flatten()
        real = (prev > 0) & (nxt > 0)
        counts = torch.bincount(prev[real] * V1 + nxt[real], minlength=V1 * V1)
        counts = counts.view(V1, V1).double()  # (V + 1, V + 1): row = previous item
        totals = counts.sum(dim=1, keepdim=True)  # (V + 1, 1)
        smoothed = (counts + self.smoothing * popularity) / (totals + self.smoothing)
        unseen = totals[:, 0] == 0
        smoothed[unseen] = popularity  # no successor seen (and padding): popularity
        self.transitions = smoothed
        return self

    def score(self, history: torch.Tensor) -> torch.Tensor:
        """The transition probabilities out of each history's last item.

        Shape:
            history (B, T) -> scores (B, V + 1), column 0 = -inf.
        """
        if self.transitions is None:
            raise RuntimeError("call fit() before score()")
        history = _check_history(history, self.num_items)
        if history.shape[1] == 0:
            raise ValueError("history has no column: give at least (B, 1) ids")
        last = history[:, -1]  # (B,): left-padded, so the most recent item (0 if none)
        return _no_padding(self.transitions[last].float())  # (B, V + 1)


# ---------------------------------------------------------------------------- SASRec


class _NextItemModel(nn.Module):
    """What the next-item networks share: ``score`` ranks the catalogue after each history,
    from the logits (B, T, V + 1) that the subclass's ``forward`` returns."""

    @torch.no_grad()
    def score(self, history: torch.Tensor) -> torch.Tensor:
        """Scores of every item as the next one after each history (eval mode).

        Shape:
            history (B, T) -> scores (B, V + 1), column 0 = -inf.
        """
        was_training = self.training
        self.eval()
        try:
            logits = self(history)  # (B, T, V + 1)
        finally:
            self.train(was_training)
        return logits[:, -1]  # (B, V + 1): the most recent position


@dataclass
class SASRecConfig:
    """Sizes of the self-attentive recommender; the defaults train on the synthetic
    sessions of :mod:`attnlab.data.sessions` in seconds on a CPU."""

    num_items: int  # V: item ids 1..V, 0 is padding
    max_len: int = 24  # T: the most recent items the model reads
    dim: int = 64  # C: 300 items need little width
    num_heads: int = 2  # H; D = C / H = 32 (the paper uses one head)
    num_layers: int = 2  # two blocks, as in the paper
    ff_dim: int = 128  # the feed-forward hidden width, 2 C
    dropout: float = 0.0  # 4,000 synthetic users do not overfit in 600 steps (the paper: 0.2-0.5)

    def __post_init__(self) -> None:
        for name in ("num_items", "max_len", "dim", "num_heads", "num_layers", "ff_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} must be a multiple of num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


class SASRec(_NextItemModel):
    r"""Self-attentive sequential recommendation (Kang and McAuley 2018), pre-norm.

    .. math::

        z_0 = \sqrt{C}\, M_{s_1..s_T} + P, \qquad
        z_\ell = \operatorname{Block}_\ell(z_{\ell-1}), \qquad
        r_{t, i} = \operatorname{LN}(z_L)_t \cdot M_i

    with :math:`M` the item embeddings (V + 1, C), :math:`P` the learned
    position embeddings (T, C) and causal blocks that also ignore padded
    positions. :math:`r_{t, i}` scores item i as the item that follows
    position t; the same :math:`M` embeds the inputs and scores the outputs.
    Histories are left-padded, so the most recent item is always at position
    T - 1.

    Args:
        config: a :class:`SASRecConfig`.

    Shape:
        ids (B, T) -> logits (B, T, V + 1), column 0 = -inf; with
        ``need_weights`` also the attention weights (B, L, H, T, T).

    Example:
        >>> model = SASRec(SASRecConfig(num_items=20, max_len=6))
        >>> logits, weights = model(torch.tensor([[0, 0, 3, 4, 5, 6]]), need_weights=True)
        >>> logits.shape, weights.shape
        (torch.Size([1, 6, 21]), torch.Size([1, 2, 2, 6, 6]))
        >>> model.score(torch.tensor([[0, 0, 3, 4, 5, 6]])).shape
        torch.Size([1, 21])
    """

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.item_embed = nn.Embedding(c.num_items + 1, c.dim, padding_idx=0)  # M
        self.pos_embed = LearnedPositionalEmbedding(c.max_len, c.dim)  # P
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.dim)
        nn.init.normal_(self.item_embed.weight, std=c.dim**-0.5)
        with torch.no_grad():
            self.item_embed.weight[0].zero_()

    def forward(self, ids: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Next-item logits (B, T, V + 1) at every position; with ``need_weights`` also
        the weights (B, L, H, T, T) of every block."""
        c = self.config
        ids = _check_history(ids, c.num_items, "ids")
        B, T = ids.shape
        if T > c.max_len:
            raise ValueError(f"ids {shape_str(ids)} has T={T} > max_len={c.max_len}")
        real = ids > 0  # (B, T)
        x = self.item_embed(ids) * math.sqrt(c.dim)  # (B, T, C)
        x = self.pos_embed(x, offset=c.max_len - T)  # left-padded: the last item at T - 1
        x = self.dropout(x) * real[..., None]  # padded positions carry nothing
        mask = causal_mask(T, device=ids.device) & real[:, None, :]  # (B, T, S=T)
        weights = []
        for block in self.blocks:
            if need_weights:
                x, w = block(x, mask=mask, need_weights=True)  # w (B, H, T, T)
                weights.append(w)
            else:
                x = block(x, mask=mask)
            x = x * real[..., None]
        h = self.norm(x)  # (B, T, C)
        logits = _no_padding(h @ self.item_embed.weight.T)  # (B,T,C) @ (C,V+1) -> (B,T,V+1)
        if need_weights:
            return logits, torch.stack(weights, dim=1)  # (B, L, H, T, T)
        return logits


def next_item_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the next item over the whole catalogue, at every non-padded target.

    Args:
        logits: (B, T, V + 1), column 0 (padding) is ignored.
        targets: (B, T) item ids, 0 where there is nothing to predict.

    Example:
        >>> logits = torch.zeros(1, 2, 5)
        >>> round(float(next_item_loss(logits, torch.tensor([[0, 3]]))), 4)  # log 4
        1.3863
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V + 1) and targets (B, T); got "
                         f"{shape_str(logits)} and {shape_str(targets)}")
    mask = targets > 0
    return sequence_loss(logits[..., 1:], (targets - 1).clamp_min(0), mask=mask)


# ------------------------------------------------------------ neural baselines


@dataclass
class HistoryRecConfig:
    """Sizes of the two neural baselines, :class:`GRU4Rec` and :class:`MeanPoolRec`."""

    num_items: int  # V: item ids 1..V, 0 is padding
    dim: int = 64  # C, the width of the item table and of the state, as SASRec's default
    dropout: float = 0.0  # on the item embeddings

    def __post_init__(self) -> None:
        for name in ("num_items", "dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


class _HistoryRec(_NextItemModel):
    """The shared parts: item table, scores against it, and score()."""

    def __init__(self, config: HistoryRecConfig) -> None:
        super().__init__()
        self.config = config
        self.item_embed = nn.Embedding(config.num_items + 1, config.dim, padding_idx=0)  # M
        self.dropout = nn.Dropout(config.dropout)
        nn.init.normal_(self.item_embed.weight, std=config.dim**-0.5)
        with torch.no_grad():
            self.item_embed.weight[0].zero_()

    def states(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(B, T, C) embeddings and (B, T) real positions -> (B, T, C) states."""
        raise NotImplementedError

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-item logits (B, T, V + 1) at every position, column 0 = -inf."""
        ids = _check_history(ids, self.config.num_items, "ids")
        real = ids > 0  # (B, T)
        x = self.dropout(self.item_embed(ids))  # (B, T, C)
        h = self.states(x, real)  # (B, T, C)
        return _no_padding(h @ self.item_embed.weight.T)  # (B,T,C) @ (C,V+1) -> (B,T,V+1)


class GRU4Rec(_HistoryRec):
    r"""A GRU over the history, in the style of GRU4Rec (Hidasi et al. 2016).

    .. math::

        h_t = \operatorname{GRU}(h_{t-1}, M_{s_t}), \qquad
        r_{t, i} = \operatorname{LN}(W h_t) \cdot M_i

    One GRU layer reads the item embeddings in order, starting from a zero
    state at each history's first real item (left padding is skipped, so a
    history scores the same whatever its padding). As in GRU4Rec's later
    versions the output shares the item table; unlike the original it is
    trained with the full cross-entropy over all items at every position,
    the same loss as :class:`SASRec`, so that only the sequence model differs.

    Args:
        config: a :class:`HistoryRecConfig`.

    Shape:
        ids (B, T) -> logits (B, T, V + 1), column 0 = -inf.

    Example:
        >>> model = GRU4Rec(HistoryRecConfig(num_items=20, dim=8))
        >>> a = model.score(torch.tensor([[0, 0, 3, 4]]))
        >>> b = model.score(torch.tensor([[3, 4]]))  # the same history, less padding
        >>> a.shape, bool(torch.allclose(a, b))
        (torch.Size([1, 21]), True)
    """

    def __init__(self, config: HistoryRecConfig) -> None:
        super().__init__(config)
        self.gru = nn.GRU(config.dim, config.dim, batch_first=True)
        self.out = nn.Linear(config.dim, config.dim)
        self.norm = nn.LayerNorm(config.dim)

    def states(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        n = real.sum(1)  # (B,) real items per row, all on the right
        # left-padded -> right-padded: row b's item j (j < n_b) sits at column T - n_b + j
        cols = (torch.arange(T, device=x.device)[None, :] + T - n[:, None]) % T  # (B, T)
        right = x.gather(1, cols[..., None].expand(B, T, C))  # (B, T, C)
        packed = nn.utils.rnn.pack_padded_sequence(
            right, n.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        back = (torch.arange(T, device=x.device)[None, :] - (T - n[:, None])) % T  # (B, T)
        h = out.gather(1, back[..., None].expand(B, T, C))  # (B, T, C): left-padded again
        return self.norm(self.out(h)) * real[..., None]  # padded positions carry nothing


class MeanPoolRec(_HistoryRec):
    r"""The order-free baseline: the mean of the history's item embeddings.

    .. math::

        h_t = \frac{1}{t} \sum_{u \le t} M_{s_u}, \qquad
        r_{t, i} = \operatorname{LN}(W h_t + b) \cdot M_i

    Every item read so far counts the same, whatever its position: the model
    knows *what* a user watched, not in which order. It is what attention
    reduces to when its weights are uniform.

    Args:
        config: a :class:`HistoryRecConfig`.

    Shape:
        ids (B, T) -> logits (B, T, V + 1), column 0 = -inf.

    Example:
        >>> model = MeanPoolRec(HistoryRecConfig(num_items=20, dim=8))
        >>> a = model.score(torch.tensor([[0, 3, 4, 5]]))
        >>> b = model.score(torch.tensor([[0, 5, 3, 4]]))  # the same items, reordered
        >>> a.shape, bool(torch.allclose(a, b))
        (torch.Size([1, 21]), True)
    """

    def __init__(self, config: HistoryRecConfig) -> None:
        super().__init__(config)
        self.out = nn.Linear(config.dim, config.dim)
        self.norm = nn.LayerNorm(config.dim)

    def states(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        total = (x * real[..., None]).cumsum(1)  # (B, T, C)
        count = real.cumsum(1).clamp_min(1)[..., None]  # (B, T, 1)
        return self.norm(self.out(total / count)) * real[..., None]  # (B, T, C)
