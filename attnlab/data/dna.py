r"""DNA sequences with a planted binding motif, decoys that nearly match it, and the answers.

A transcription factor binds DNA where the bases spell (nearly) its motif. The task here
is the classic one of motif finding: say whether a sequence holds a binding site. The
motif is a made-up factor's, ``TGACGCATCA`` (L = 10 bases), described by a position
weight matrix (PWM): for each of its positions, how likely each base is. The rule that
decides the label is exact and checkable:

.. math::

    y = 1 \iff \min_{t} d_H\big(x_{t:t+L}, \text{consensus}\big) \le 2 ,

with :math:`d_H` the Hamming distance (the number of point mutations) of a window of L
bases from the consensus. Every sequence is built so that no window other than the
planted site comes within 3 mutations of the consensus: a site has at most 2, anything
else at least 3, a margin of one mutation between the classes.

- Background: independent bases with a GC content of 41 % (about the human genome's).
- Positives: one site drawn from the PWM, kept if it has at most 2 mutations, planted at
  a random position.
- Decoys, in negatives *and* positives alike (so that carrying one says nothing about the
  label): half a motif (5 consensus bases, then random bases), the motif with 3 or 4
  mutations, the motif's bases shuffled, and the motif written backwards.

Sequences are token ids 0..3 for A, C, G, T (``ALPHABET``), (N, T) int64;
:func:`one_hot` turns them into (N, T, 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from attnlab._validate import check_ids, shape_str
from attnlab.data.tasks import _check_counts

__all__ = [
    "ALPHABET",
    "CONSENSUS",
    "DECOY_KINDS",
    "motif_pwm",
    "encode",
    "decode",
    "one_hot",
    "window_distances",
    "site_mask",
    "DNASplit",
    "DNATask",
    "dna_task",
    "PARTNER",
    "GrammarSplit",
    "GrammarTask",
    "grammar_task",
]

#: The bases, in the order of their token ids (A=0, C=1, G=2, T=3).
ALPHABET = "ACGT"
#: The consensus of the made-up factor's motif, the most likely base at each position.
CONSENSUS = "TGACGCATCA"
#: How strongly each motif position is conserved: the PWM's probability of the consensus
#: base. The core (positions 2-7) is near-invariant and the flanks vary, as in real motifs.
_CONSERVATION = (0.70, 0.85, 0.95, 0.95, 0.90, 0.90, 0.95, 0.95, 0.85, 0.70)
#: A second factor's motif, for :func:`grammar_task`; 10 mutations from ``CONSENSUS``
#: (6 when read backwards).
PARTNER = "CCTTAGGAAC"
#: What a decoy can be; "none" marks a sequence without one.
DECOY_KINDS = ("none", "half", "mutated", "shuffled", "reversed")
_GC = 0.41  # the human genome's GC content, about 41 %
_MAX_SITE = 2  # a binding site has at most this many mutations ...
_MIN_DECOY = 3  # ... and anything else at least this many


def motif_pwm(consensus: str = CONSENSUS,
              conservation: tuple[float, ...] = _CONSERVATION) -> torch.Tensor:
    """The position weight matrix: P(base | motif position), the rest shared evenly.

    Args:
        consensus: the motif's most likely bases, L letters of ``ACGT``.
        conservation: for each position, the probability of its consensus base.

    Shape:
        Returns (L, 4), each row summing to 1, columns in ``ALPHABET`` order.

    Example:
        >>> pwm = motif_pwm("AC", (0.7, 1.0))
        >>> pwm
        tensor([[0.7000, 0.1000, 0.1000, 0.1000],
                [0.0000, 1.0000, 0.0000, 0.0000]], dtype=torch.float64)
    """
    if len(consensus) != len(conservation) or not consensus:
        raise ValueError(f"consensus ({len(consensus)} bases) and conservation "
                         f"({len(conservation)} values) must have the same, positive length")
    ids = encode(consensus)
    pwm = torch.empty(len(consensus), 4, dtype=torch.float64)
    for i, (base, p) in enumerate(zip(ids.tolist(), conservation)):
        if not 0.25 <= p <= 1.0:
            raise ValueError(f"conservation must lie in [0.25, 1], got {p} at position {i}")
        pwm[i] = (1.0 - p) / 3
        pwm[i, base] = p
    return pwm


def encode(seq: str) -> torch.Tensor:
    """Token ids of a DNA string (upper or lower case).

    Shape:
        a string of T bases -> (T,) int64.

    Example:
        >>> encode("gattaca")
        tensor([2, 0, 3, 3, 0, 1, 0])
    """
    seq = seq.upper()
    bad = sorted(set(seq) - set(ALPHABET))
    if bad:
        raise ValueError(f"a DNA sequence may hold only {ALPHABET}, got {bad}")
    return torch.tensor([ALPHABET.index(b) for b in seq], dtype=torch.int64)


def decode(ids: torch.Tensor) -> str:
    """The string of a (T,) tensor of token ids.

    Example:
        >>> decode(torch.tensor([2, 0, 3, 3, 0, 1, 0]))
        'GATTACA'
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        raise ValueError(f"decode needs a (T,) tensor of ids, got "
                         f"{shape_str(ids) if isinstance(ids, torch.Tensor) else type(ids)}")
    return "".join(ALPHABET[i] for i in ids.tolist())


def _check_ids(ids: torch.Tensor) -> None:
    check_ids(ids, "ids", 4, what="base", bounds=f"0..3 ({ALPHABET})",
              dtypes=(torch.int64, torch.int32, torch.uint8))


def one_hot(ids: torch.Tensor) -> torch.Tensor:
    """One-hot encode bases: channel ``c`` is 1 where the base is ``ALPHABET[c]``.

    Shape:
        ids (B, T) -> (B, T, 4) float32.

    Example:
        >>> one_hot(encode("GAT")[None])
        tensor([[[0., 0., 1., 0.],
                 [1., 0., 0., 0.],
                 [0., 0., 0., 1.]]])
    """
    _check_ids(ids)
    return torch.nn.functional.one_hot(ids.long(), 4).float()  # (B, T, 4)


def window_distances(ids: torch.Tensor, motif: str = CONSENSUS) -> torch.Tensor:
    """The Hamming distance of every window of L bases from ``motif``.

    Entry ``[b, t]`` counts the mismatches of ``ids[b, t:t+L]``; the label rule of
    :func:`dna_task` is ``window_distances(ids).amin(-1) <= 2``.

    Shape:
        ids (B, T) -> (B, T - L + 1) int64.

    Example:
        >>> window_distances(encode("TTGACGCATCAT")[None])
        tensor([[ 9,  0, 10]])
    """
    _check_ids(ids)
    m = encode(motif).to(ids.device)
    if ids.shape[1] < len(m):
        raise ValueError(f"sequences of {ids.shape[1]} bases are shorter than the motif "
                         f"({len(m)} bases)")
    windows = ids.long().unfold(1, len(m), 1)  # (B, T - L + 1, L)
    return (windows != m).sum(-1)  # (B, T - L + 1)


def site_mask(starts: torch.Tensor, length: int, T: int) -> torch.Tensor:
    """True on the ``length`` positions from each start; a row with start -1 is all False.

    ::

        site_mask(torch.tensor([2, -1]), 3, 7)
        row 0:  . . 1 1 1 . .
        row 1:  . . . . . . .

    Shape:
        starts (B,) -> (B, T) bool.

    Example:
        >>> site_mask(torch.tensor([2, -1]), 3, 7).int()
        tensor([[0, 0, 1, 1, 1, 0, 0],
                [0, 0, 0, 0, 0, 0, 0]], dtype=torch.int32)
    """
    if not isinstance(starts, torch.Tensor) or starts.dim() != 1:
        raise ValueError(f"starts must be a (B,) tensor, got "
                         f"{shape_str(starts) if isinstance(starts, torch.Tensor) else starts}")
    if length < 1 or T < length:
        raise ValueError(f"need 1 <= length <= T, got length={length}, T={T}")
    if starts.numel() and (int(starts.max()) > T - length or int(starts.min()) < -1):
        raise ValueError(f"starts must lie in [0, T - length] = [0, {T - length}] or be -1, "
                         f"got {starts.tolist()}")
    t = torch.arange(T, device=starts.device)
    return (starts[:, None] >= 0) & (t >= starts[:, None]) & (t < starts[:, None] + length)


@dataclass(frozen=True)
class DNASplit:
    """One split: sequences, labels and where the site and the decoy were planted.

    Attributes:
        ids: bases (N, T) int64, ids into ``ALPHABET``.
        labels: 1 for a sequence with a binding site, else 0, (N,) int64.
        site_start: first base of the planted site (N,), -1 in negatives.
        decoy_start: first base of the decoy (N,), -1 where there is none.
        decoy_kind: index into ``DECOY_KINDS`` (N,), 0 ("none") where there is none.
        motif_len: L, the length of the site and of the decoys.
    """

    ids: torch.Tensor
    labels: torch.Tensor
    site_start: torch.Tensor
    decoy_start: torch.Tensor
    decoy_kind: torch.Tensor
    motif_len: int = len(CONSENSUS)

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def one_hot(self) -> torch.Tensor:
        """The sequences one-hot, (N, T, 4)."""
        return one_hot(self.ids)

    def site_mask(self) -> torch.Tensor:
        """True on the planted site's bases, (N, T) bool (all False in negatives)."""
        return site_mask(self.site_start, self.motif_len, self.ids.shape[1])

    def decoy_mask(self) -> torch.Tensor:
        """True on the decoy's bases, (N, T) bool (all False where there is none)."""
        return site_mask(self.decoy_start, self.motif_len, self.ids.shape[1])


@dataclass(frozen=True)
class DNATask:
    """Disjoint training and test splits (no sequence in both) and the motif they share."""

    train: DNASplit
    test: DNASplit
    consensus: str = CONSENSUS
    pwm: torch.Tensor = field(default_factory=motif_pwm)


def _mutate(rng: np.random.Generator, site: np.ndarray, k: int) -> np.ndarray:
    """``site`` with exactly ``k`` positions changed to another base."""
    out = site.copy()
    for i in rng.choice(len(site), size=k, replace=False):
        out[i] = (out[i] + rng.integers(1, 4)) % 4
    return out


def _decoy(rng: np.random.Generator, kind: str, motif: np.ndarray, background) -> np.ndarray:
    L = len(motif)
    if kind == "half":  # one half of the motif, the other half background
        out = background(L)
        half = L // 2
        if rng.random() < 0.5:
            out[:half] = motif[:half]
        else:
            out[L - half:] = motif[L - half:]
        return out
    if kind == "mutated":  # the motif with one or two mutations too many
        return _mutate(rng, motif, int(rng.integers(_MIN_DECOY, _MIN_DECOY + 2)))
    if kind == "shuffled":  # the motif's bases in another order (same composition)
        return rng.permutation(motif)
    return motif[::-1].copy()  # "reversed": read backwards (not the reverse complement)


def _generate(rng: np.random.Generator, n: int, T: int, pwm: np.ndarray, motif: np.ndarray,
              p_decoy: float) -> tuple[np.ndarray, ...]:
    L = len(motif)
    p_base = np.array([1 - _GC, _GC, _GC, 1 - _GC]) / 2  # A, C, G, T

    def background(k: int) -> np.ndarray:
        return rng.choice(4, size=k, p=p_base)

    ids = np.empty((n, T), dtype=np.int64)
    labels = rng.integers(0, 2, size=n)
    site_start = np.full(n, -1)
    decoy_start = np.full(n, -1)
    decoy_kind = np.zeros(n, dtype=np.int64)
    cum = pwm.cumsum(axis=1)
    for i in range(n):
        while True:  # rejection: redraw until the sequence obeys the rule with its margin
            seq = background(T)
            has_decoy = rng.random() < p_decoy
            n_parts = int(labels[i]) + int(has_decoy)
            # non-overlapping starts for the site and the decoy
            starts = rng.choice(T - L + 1 - (n_parts - 1) * L, size=n_parts, replace=False)
            starts = np.sort(starts) + np.arange(n_parts) * L
            order = rng.permutation(n_parts)
            s_site = d_start = -1
            kind = 0
            part = 0
            if labels[i]:
                site = (rng.random((L, 1)) > cum).sum(1)  # a draw from the PWM, (L,)
                if (site != motif).sum() > _MAX_SITE:
                    continue
                s_site = int(starts[order[part]])
                seq[s_site:s_site + L] = site
                part += 1
            if has_decoy:
                kind = int(rng.integers(1, len(DECOY_KINDS)))
                d_start = int(starts[order[part]])
                seq[d_start:d_start + L] = _decoy(rng, DECOY_KINDS[kind], motif, background)
            dist = (np.lib.stride_tricks.sliding_window_view(seq, L) != motif).sum(1)
            if labels[i]:
                dist[s_site] = 99  # the site itself is allowed to match
            if dist.min() >= _MIN_DECOY:
                break
        ids[i], site_start[i], decoy_start[i], decoy_kind[i] = seq, s_site, d_start, kind
    return ids, labels, site_start, decoy_start, decoy_kind


def dna_task(n_train: int = 4000, n_test: int = 1000, *, length: int = 120,
             p_decoy: float = 0.75, seed: int = 0) -> DNATask:
    """Sequences with and without a binding site of ``CONSENSUS``, with decoys.

    Half the sequences (at random) are positives. Each positive carries one site drawn
    from :func:`motif_pwm` with at most 2 mutations; each sequence, positive or not,
    carries with probability ``p_decoy`` one decoy of a kind drawn from
    ``DECOY_KINDS`` that does not overlap the site. Sequences are redrawn until no
    other window comes within 2 mutations of the consensus, so that
    ``labels == (window_distances(ids).amin(-1) <= 2)`` holds exactly. The splits share
    no sequence.

    Args:
        n_train: number of training sequences.
        n_test: number of test sequences.
        length: T, bases per sequence (at least 2 L + 1 = 21).
        p_decoy: probability that a sequence carries a decoy, in [0, 1].
        seed: seeds NumPy's generator.

    Example:
        >>> task = dna_task(n_train=20, n_test=10, length=40, seed=0)
        >>> task.train.ids.shape, task.test.ids.shape
        (torch.Size([20, 40]), torch.Size([10, 40]))
        >>> bool(((window_distances(task.test.ids).amin(-1) <= 2).long()
        ...       == task.test.labels).all())
        True
    """
    _check_counts(n_train=n_train, n_test=n_test)
    L = len(CONSENSUS)
    if length < 2 * L + 1:
        raise ValueError(f"length must be at least {2 * L + 1} to hold a site and a decoy, "
                         f"got {length}")
    if not 0.0 <= p_decoy <= 1.0:
        raise ValueError(f"p_decoy must lie in [0, 1], got {p_decoy}")
    rng = np.random.default_rng(seed)
    pwm = motif_pwm()
    motif = encode(CONSENSUS).numpy()
    n = n_train + n_test
    arrays = _generate(rng, n, length, pwm.numpy(), motif, p_decoy)
    # drop repeats (vanishingly rare at these lengths) so that no sequence is in both splits
    _, first = np.unique(arrays[0], axis=0, return_index=True)
    keep = np.sort(first)
    while len(keep) < n:  # top up with fresh draws, again without repeats
        extra = _generate(rng, n - len(keep), length, pwm.numpy(), motif, p_decoy)
        arrays = tuple(np.concatenate([a[keep], e]) for a, e in zip(arrays, extra))
        _, first = np.unique(arrays[0], axis=0, return_index=True)
        keep = np.sort(first)
    tensors = [torch.from_numpy(np.ascontiguousarray(a[keep])) for a in arrays]

    def split(rows: slice) -> DNASplit:
        return DNASplit(*(t[rows].clone() for t in tensors), motif_len=L)

    return DNATask(split(slice(0, n_train)), split(slice(n_train, n)), CONSENSUS, pwm)


# ------------------------------------------------------------------ regulatory grammar


@dataclass(frozen=True)
class GrammarSplit:
    """One split of :func:`grammar_task`.

    Attributes:
        ids: bases (N, T) int64.
        labels: 1 where ``CONSENSUS`` comes before ``PARTNER``, else 0, (N,) int64.
        first_start: where the ``CONSENSUS`` site starts (N,).
        partner_start: where the ``PARTNER`` site starts (N,).
    """

    ids: torch.Tensor
    labels: torch.Tensor
    first_start: torch.Tensor
    partner_start: torch.Tensor

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def one_hot(self) -> torch.Tensor:
        """The sequences one-hot, (N, T, 4)."""
        return one_hot(self.ids)


@dataclass(frozen=True)
class GrammarTask:
    """Disjoint training and test splits of :func:`grammar_task`."""

    train: GrammarSplit
    test: GrammarSplit


def grammar_task(n_train: int = 4000, n_test: int = 1000, *, length: int = 80,
                 min_gap: int = 20, flank: int = 10, seed: int = 0) -> GrammarTask:
    """Two motifs in every sequence; the label is their order (a "regulatory grammar").

    Every sequence holds one exact copy of ``CONSENSUS`` and one of ``PARTNER``
    at random positions, at least ``min_gap`` bases apart and ``flank`` bases from either
    end; the label is 1 when ``CONSENSUS`` comes first. Both classes hold the same
    two words, so a model that only asks *whether* a motif occurs cannot do better than
    chance. The gap keeps the order out of reach of any filter narrower than it (adjacent
    motifs would show their order in one window), and the flanks keep the motifs away from
    the ends, where a convolution's zero padding tells it where it is. Sequences are
    redrawn until no other window comes within 2 mutations of either motif; the splits
    share no sequence.

    Args:
        n_train: number of training sequences.
        n_test: number of test sequences.
        length: T, bases per sequence (at least 2 flank + 2 L + min_gap).
        min_gap: the fewest bases between the two motifs.
        flank: the fewest bases between a motif and an end of the sequence.
        seed: seeds NumPy's generator.

    Example:
        >>> task = grammar_task(n_train=8, n_test=4, length=40, min_gap=5, flank=2, seed=0)
        >>> split = task.train
        >>> bool(((split.first_start < split.partner_start).long() == split.labels).all())
        True
    """
    _check_counts(n_train=n_train, n_test=n_test)
    L = len(CONSENSUS)
    if min_gap < 0 or flank < 0:
        raise ValueError(f"min_gap and flank must be >= 0, got {min_gap} and {flank}")
    if length < 2 * flank + 2 * L + min_gap:
        raise ValueError(f"length must be at least 2 flank + 2 L + min_gap = "
                         f"{2 * flank + 2 * L + min_gap}, got {length}")
    rng = np.random.default_rng(seed)
    motifs = (encode(CONSENSUS).numpy(), encode(PARTNER).numpy())
    p_base = np.array([1 - _GC, _GC, _GC, 1 - _GC]) / 2
    n = n_train + n_test
    rows: list[np.ndarray] = []
    seen: set[bytes] = set()
    labels, first, partner = [], [], []
    while len(rows) < n:
        seq = rng.choice(4, size=length, p=p_base)
        a, b = np.sort(rng.integers(flank, length - flank - L + 1, size=2))
        if b - a < L + min_gap:
            continue
        y = int(rng.integers(0, 2))
        s_first, s_partner = (a, b) if y else (b, a)
        seq[s_first:s_first + L] = motifs[0]
        seq[s_partner:s_partner + L] = motifs[1]
        windows = np.lib.stride_tricks.sliding_window_view(seq, L)
        near = [(windows != m).sum(1) <= _MAX_SITE for m in motifs]  # (T - L + 1,) each
        if near[0].sum() != 1 or near[1].sum() != 1 or seq.tobytes() in seen:
            continue
        seen.add(seq.tobytes())
        rows.append(seq)
        labels.append(y)
        first.append(s_first)
        partner.append(s_partner)
    tensors = [torch.from_numpy(np.ascontiguousarray(np.array(a, dtype=np.int64)))
               for a in (rows, labels, first, partner)]

    def split(part: slice) -> GrammarSplit:
        return GrammarSplit(*(t[part].clone() for t in tensors))

    return GrammarTask(split(slice(0, n_train)), split(slice(n_train, n)))
