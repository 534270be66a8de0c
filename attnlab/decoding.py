r"""Decoding: turning next-token logits into text.

A language model gives, at each step, logits (..., V) over the next token.
How the next token is chosen from them is the *decoding* rule:

- **greedy**: the most likely token;
- **temperature** :math:`\tau`: sample from
  :math:`\operatorname{softmax}(z / \tau)`; :math:`\tau < 1` sharpens,
  :math:`\tau > 1` flattens;
- **top-k** (:func:`top_k_filter`): sample among the k most likely tokens;
- **top-p**, or nucleus sampling (:func:`top_p_filter`; Holtzman et al.
  2020): sample among the smallest set of most likely tokens whose
  probability reaches p, so that the set is small where the model is sure
  and large where it is not;
- **beam search** (:func:`beam_search`): keep the ``num_beams`` most likely
  partial sequences at every step instead of one, optionally with the length
  penalty of Wu et al. (2016).

The filters return logits with the removed tokens set to ``-inf``, so that a
softmax gives them probability 0; sampling is then
``torch.multinomial(F.softmax(filtered / temperature, -1), 1)``, as
:meth:`attnlab.models.GPT.generate` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from attnlab._validate import check_tensor, shape_str

__all__ = ["top_k_filter", "top_p_filter", "length_penalty_factor", "beam_search"]


def _check_logits(logits: torch.Tensor) -> None:
    check_tensor(logits, "logits")
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got "
                         f"{shape_str(logits)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got {logits.dtype}")
    if torch.isnan(logits).any() or (logits == float("inf")).any():
        raise ValueError("logits must not hold NaN or +inf (-inf marks a removed token)")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    r"""Keep the ``k`` largest logits of each row; the others become ``-inf``.

    Tokens tied with the k-th largest logit are kept too, so that the result
    does not depend on the order of the vocabulary. The input is not
    modified.

    Args:
        logits: next-token logits.
        k: how many tokens to keep, >= 1 (k >= V keeps every token).

    Shape:
        logits (..., V) -> (..., V).

    Example:
        >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0, 0.0]), 2)
        tensor([-inf, 3., 2., -inf])
    """
    _check_logits(logits)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    r"""Nucleus filtering (Holtzman et al. 2020): keep the most likely tokens up to mass p.

    For each row, sort the tokens by probability
    :math:`\pi_{(1)} \ge \pi_{(2)} \ge \dots` (the softmax of the row) and keep
    the smallest prefix whose probability reaches p: token :math:`(i)` is
    kept when the tokens before it hold less than p,
    :math:`\sum_{j<i} \pi_{(j)} < p`. The most likely token is always kept;
    tokens tied with the last one kept are kept too (the result does not
    depend on the order of the vocabulary); ``p = 1`` keeps every token whose
    logit is finite. Every other logit becomes ``-inf``. Rows are filtered
    independently; a row that is all ``-inf`` is returned as it is; the
    input is not modified.

    Args:
        logits: next-token logits; ``-inf`` marks a token already removed.
        p: the probability mass to keep, in (0, 1].

    Shape:
        logits (..., V) -> (..., V).

    Example:
        >>> logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()  # probabilities
        >>> top_p_filter(logits, 0.7).isfinite()                  # 0.5 + 0.3 >= 0.7
        tensor([ True,  True, False, False])
        >>> top_p_filter(logits, 0.5).isfinite()                  # 0.5 reaches 0.5
        tensor([ True, False, False, False])
    """
    _check_logits(logits)
    if (isinstance(p, bool) or not isinstance(p, (int, float))
            or not math.isfinite(p) or not 0 < p <= 1):
        raise ValueError(f"p must be a number in (0, 1], got {p!r}")
    if p == 1:
        return logits.clone()
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = F.softmax(sorted_logits.float(), dim=-1)  # (..., V)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above
    keep = before < p  # (..., V), a prefix of the sorted row
    keep[..., 0] = True  # the most likely token, always (all -inf rows: NaN mass)
    n_keep = keep.sum(-1, keepdim=True)  # (..., 1)
    threshold = sorted_logits.gather(-1, n_keep - 1)  # the smallest logit kept
    return logits.masked_fill(logits < threshold, float("-inf"))


def length_penalty_factor(length: int | torch.Tensor, alpha: float
                          ) -> float | torch.Tensor:
    r"""The length penalty of Wu et al. (2016), :math:`((5 + L) / 6)^\alpha`.

    Beam search ranks finished hypotheses by
    :math:`\log P(y) / \operatorname{lp}(|y|)`. Log-probabilities are
    negative and add up, so without a penalty (:math:`\alpha = 0`,
    :math:`\operatorname{lp} = 1`) longer hypotheses score lower; a larger
    :math:`\alpha` divides long hypotheses' scores by more, which favours
    them. At :math:`\alpha = 1` the score is close to the mean log-probability
    per token (for long hypotheses).

    Args:
        length: L, the number of generated tokens (the end token included).
        alpha: the strength, >= 0 in the usual range [0, 1].

    Example:
        >>> length_penalty_factor(1, 1.0), length_penalty_factor(7, 0.5)
        (1.0, 1.4142135623730951)
    """
    return ((5 + length) / 6) ** alpha


def _check_beam_args(idx: torch.Tensor, max_new_tokens: int, num_beams: int,
                     length_penalty: float, eos_id: int | None,
                     pad_id: int) -> None:
    check_tensor(idx, "idx")
    if idx.dim() != 2 or idx.shape[0] == 0 or idx.shape[1] == 0:
        raise ValueError(f"idx must be (B, T0) token ids with B, T0 >= 1, got "
                         f"{shape_str(idx)}")
    if idx.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"idx must hold integer token ids, got dtype {idx.dtype}")
    for name, value, low in (("max_new_tokens", max_new_tokens, 0),
                             ("num_beams", num_beams, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if (isinstance(length_penalty, bool)
            or not isinstance(length_penalty, (int, float))
            or not math.isfinite(length_penalty)):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a token id >= 0, got {value!r}")


@torch.no_grad()
def beam_search(
    model: Callable[[torch.Tensor], torch.Tensor],
    idx: torch.Tensor,
    max_new_tokens: int,
    num_beams: int,
    length_penalty: float = 0.0,
    *,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> torch.Tensor:
    r"""Beam search: the most likely continuation found by keeping ``num_beams`` candidates.

    Greedy decoding keeps one partial sequence and commits to its most likely
    next token; a token that looks best now can lead to a worse sequence
    overall. Beam search keeps, for each prompt, the ``num_beams`` partial
    sequences (beams) of highest log-probability
    :math:`\log P(y) = \sum_t \log p(y_t \mid x, y_{<t})`: at each step it
    extends every beam by every token and keeps the ``num_beams`` best of the
    ``num_beams · V`` extensions. A beam that produces ``eos_id`` is
    finished and set aside. Finished hypotheses, and at the end the beams
    still open, are ranked by
    :math:`\log P(y) / \operatorname{lp}(|y|)` with the length penalty of
    Wu et al. (2016), :math:`\operatorname{lp}(L) = ((5 + L)/6)^\alpha`
    (:func:`length_penalty_factor`), where L counts the generated tokens,
    ``eos_id`` included, and :math:`\alpha` is ``length_penalty``:
    0 ranks by log-probability alone, which favours short hypotheses.
    Search stops early for a prompt once ``num_beams`` hypotheses are
    finished and no open beam can still beat the best of them. With
    ``num_beams=1`` it is greedy decoding. Ties between tokens go to the
    lower id, as in ``argmax``.

    ``model`` is any callable that maps ids (N, T) to logits (N, T, V), for
    instance a :class:`attnlab.models.GPT`; it is called on the whole
    sequences at each step (no cache), with N = B · ``num_beams`` rows:
    rows ``b * num_beams`` to ``(b + 1) * num_beams - 1`` continue prompt b.
    An encoder–decoder fits through a small adapter that repeats each
    source's memory ``num_beams`` times (``repeat_interleave``).

    Args:
        model: maps (N, T) ids to (N, T, V) next-token logits.
        idx: prompts (B, T0), all of the same length.
        max_new_tokens: the most tokens to add.
        num_beams: K, the beams kept per prompt.
        length_penalty: :math:`\alpha` of the length penalty (0: none).
        eos_id: the end token; None: every hypothesis has max_new_tokens tokens.
        pad_id: fills the positions after a hypothesis's end.

    Returns:
        The best hypothesis per prompt, prompt included; shorter ones are
        padded with ``pad_id`` after their ``eos_id``.

    Shape:
        idx (B, T0) -> (B, T0 + L), L <= max_new_tokens the longest best
        hypothesis.

    Example:
        >>> from attnlab.models import GPT, GPTConfig
        >>> _ = torch.manual_seed(0)
        >>> gpt = GPT(GPTConfig(vocab_size=8, block_size=12, n_embd=16, n_head=2)).eval()
        >>> prompt = torch.tensor([[1, 2, 3]])
        >>> beam_search(gpt, prompt, 5, num_beams=3).shape
        torch.Size([1, 8])
        >>> torch.equal(beam_search(gpt, prompt, 5, num_beams=1),
        ...             gpt.generate(prompt, 5))
        True
    """
    _check_beam_args(idx, max_new_tokens, num_beams, length_penalty, eos_id, pad_id)
    B, T0 = idx.shape
    K = num_beams
    if max_new_tokens == 0:
        return idx.clone()
    seqs = idx.repeat_interleave(K, dim=0)  # (B K, T0)
    neg_inf = float("-inf")
    scores = [[0.0] + [neg_inf] * (K - 1) for _ in range(B)]  # log P of each beam
    # (score / lp, row of seqs, new tokens kept) of each finished hypothesis
    finished: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(B)]
    done = [False] * B

    def lp(length: int) -> float:
        return float(length_penalty_factor(length, length_penalty))

    for step in range(max_new_tokens):
        logits = model(seqs)  # (B K, T, V)
        if (not isinstance(logits, torch.Tensor) or logits.dim() != 3
                or logits.shape[:2] != seqs.shape):
            got = shape_str(logits) if isinstance(logits, torch.Tensor) else type(logits)
            raise ValueError(f"model must map ids (N, T) to logits (N, T, V); for "
                             f"{shape_str(seqs)} it returned {got}")
        logp = F.log_softmax(logits[:, -1].float(), dim=-1)  # (B K, V)
        V = logp.shape[-1]
        prior = torch.tensor(scores, device=logp.device)  # (B, K)
        total = (prior[..., None] + logp.view(B, K, V)).view(B, K * V)  # (B, K V)
        # 2K candidates: even if K of them end, K remain to continue
        n_cand = min(2 * K, K * V)
        cand_scores, cand = torch.sort(total, dim=-1, descending=True, stable=True)
        cs = cand_scores[:, :n_cand].tolist()  # (B, 2K)
        cand_list = cand[:, :n_cand].tolist()
        length = step + 1  # generated tokens, this one included
        rows: list[int] = []
        tokens: list[int] = []
        for b in range(B):
            kept: list[float] = []
            for rank in range(n_cand if not done[b] else 0):
                score = cs[b][rank]
                if len(kept) == K or score == neg_inf:
                    break
                beam, token = divmod(cand_list[b][rank], V)
                if eos_id is not None and token == eos_id:
                    if rank < K:  # an ending among the K best is a hypothesis
                        hyp = torch.cat([seqs[b * K + beam, T0:], seqs.new_tensor([token])])
                        finished[b].append((score / lp(length), hyp))
                    continue
                rows.append(b * K + beam)
                tokens.append(token)
                kept.append(score)
            while len(kept) < K:  # fewer than K open beams: a dummy, score -inf
                rows.append(b * K)
                tokens.append(pad_id)
                kept.append(neg_inf)
            scores[b] = kept
        new = torch.tensor(tokens, device=idx.device, dtype=idx.dtype)
        seqs = torch.cat([seqs[torch.tensor(rows, device=idx.device)], new[:, None]], 1)
        # a prompt is done when K hypotheses are finished and no open beam can
        # beat the best: its log P only falls, and lp is monotone in L
        best_lp = max(lp(length + 1), lp(max_new_tokens))
        for b in range(B):
            if done[b] or len(finished[b]) < K:
                continue
            best_done = max(s for s, _ in finished[b])
            if scores[b][0] == neg_inf or best_done >= scores[b][0] / best_lp:
                done[b] = True
        if all(done):
            break
    results = []
    for b in range(B):
        hyps = list(finished[b])
        if not done[b]:  # the open beams compete with what has finished
            length = seqs.shape[1] - T0
            hyps += [(scores[b][k] / lp(length), seqs[b * K + k, T0:])
                     for k in range(K) if scores[b][k] > neg_inf]
        best = max(range(len(hyps)), key=lambda i: hyps[i][0])  # first of ties
        results.append(hyps[best][1])
    L = max(len(r) for r in results)
    out = idx.new_full((B, T0 + L), pad_id)
    out[:, :T0] = idx
    for b, r in enumerate(results):
        out[b, T0:T0 + len(r)] = r
    return out
