r"""Real transcription-factor motifs: JASPAR matrices, and DNA with sites sampled from them.

:func:`jaspar_matrix` reads one of the few JASPAR 2024 matrices that ship in
``attnlab/data/jaspar/`` (CC BY 4.0; cite Rauluseviciute et al. 2024, Nucleic Acids
Research 52(D1):D174-D182): counts of each base at each position of a factor's aligned
binding sites, whose normalised rows are its position weight matrix (PWM).
:func:`planted_task` plants sites *sampled* from two such PWMs, on either strand, into
background DNA, under one of two rules: whether the first factor's site is present, or
which of the two sites comes first. Sequences are token ids into
:data:`attnlab.data.dna.ALPHABET`, as in :mod:`attnlab.data.dna`.

- **Source.** The CORE collection of JASPAR 2024 (https://jaspar.elixir.no), copied
  unchanged from the database in the ``pyjaspar`` 4.0.0 wheel by
  ``tools/extract_jaspar.py``: CTCF MA0139.2, Spi1 MA0080.7, GATA1 MA0035.5, REST MA0138.3.
- **Licence.** Creative Commons Attribution 4.0 International (CC BY 4.0); the files and
  their note are in ``attnlab/data/jaspar/``.
- **Citation.** Rauluseviciute, I. et al. (2024), "JASPAR 2024: 20th anniversary of the
  open-access database of transcription factor binding profiles", Nucleic Acids Research
  52(D1):D174-D182 (``rauluseviciute2024jaspar`` in the book's bibliography).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from attnlab.data.dna import _GC, ALPHABET, one_hot, site_mask
from attnlab.data.tasks import _check_counts

__all__ = ["JASPAR_IDS", "JasparMatrix", "jaspar_matrix", "reverse_complement",
           "PlantedSplit", "PlantedTask", "planted_task"]


#: The JASPAR 2024 matrices that ship in ``attnlab/data/jaspar/``: CTCF, Spi1, GATA1, REST.
JASPAR_IDS = ("MA0139.2", "MA0080.7", "MA0035.5", "MA0138.3")
_JASPAR_DIR = Path(__file__).with_name("jaspar")  # the matrices, one file each


@dataclass(frozen=True)
class JasparMatrix:
    """A JASPAR position frequency matrix: how often each base was seen at each position.

    Attributes:
        id: the JASPAR matrix ID with its version, e.g. ``"MA0139.2"``.
        name: the factor, e.g. ``"CTCF"``.
        counts: (L, 4) float64, counts of A, C, G, T (``ALPHABET`` order) per position.
    """

    id: str
    name: str
    counts: torch.Tensor

    @property
    def sites(self) -> int:
        """How many aligned sites the counts come from, the largest position total.

        In some JASPAR matrices the totals differ by a few counts (0.5 % for CTCF's,
        913 down to 908), where aligned sites did not cover every position."""
        return round(float(self.counts.sum(-1).max()))

    def pwm(self, pseudocount: float = 0.0) -> torch.Tensor:
        """P(base | position), (L, 4): counts plus ``pseudocount``, each row summing to 1."""
        p = self.counts + pseudocount
        return p / p.sum(-1, keepdim=True)


def jaspar_matrix(jaspar_id: str) -> JasparMatrix:
    """A JASPAR matrix that ships with attnlab, read offline from ``attnlab/data/jaspar``.

    Source: the CORE collection of JASPAR 2024 (Rauluseviciute et al. 2024, "JASPAR 2024:
    20th anniversary of the open-access database of transcription factor binding
    profiles", Nucleic Acids Research 52(D1):D174-D182), copied unchanged by
    ``tools/extract_jaspar.py``. JASPAR's data are licensed CC BY 4.0: cite that paper.

    Args:
        jaspar_id: one of ``JASPAR_IDS``.

    Shape:
        ``.counts`` and ``.pwm()`` are (L, 4), columns in ``ALPHABET`` order.

    Example:
        >>> from attnlab.data.dna import decode
        >>> ctcf = jaspar_matrix("MA0139.2")
        >>> ctcf.name, tuple(ctcf.counts.shape), ctcf.sites
        ('CTCF', (15, 4), 913)
        >>> decode(ctcf.pwm().argmax(-1))
        'GCCACCAGGGGGCGC'
    """
    if jaspar_id not in JASPAR_IDS:
        raise ValueError(f"no JASPAR matrix {jaspar_id!r} ships with attnlab; "
                         f"choose one of {JASPAR_IDS}")
    header, *rows = (_JASPAR_DIR / f"{jaspar_id}.jaspar").read_text().splitlines()
    found, name = header[1:].split("\t")
    counts = {r[0]: [float(v) for v in r[r.index("[") + 1:r.index("]")].split()]
              for r in rows if r.strip()}
    if found != jaspar_id or sorted(counts) != sorted(ALPHABET):
        raise ValueError(f"{jaspar_id}.jaspar is malformed")
    return JasparMatrix(found, name,
                        torch.tensor([counts[b] for b in ALPHABET], dtype=torch.float64).T)


def reverse_complement(ids: torch.Tensor) -> torch.Tensor:
    """The other strand, read 5' to 3': the bases reversed and A<->T, C<->G swapped.

    With ids in ``ALPHABET`` order the complement of ``i`` is ``3 - i``; a PWM (L, 4) is
    reverse-complemented by ``pwm.flip(0, 1)``.

    Shape:
        (..., T) -> (..., T).

    Example:
        >>> from attnlab.data.dna import decode, encode
        >>> decode(reverse_complement(encode("GATTACA")))
        'TGTAATC'
    """
    return 3 - ids.flip(-1)


@dataclass(frozen=True)
class PlantedSplit:
    """One split of :func:`planted_task`.

    Attributes:
        ids: bases (N, T) int64.
        labels: (N,) int64, the rule's answer (see :func:`planted_task`).
        starts: (N, 2) first base of the site of each of the task's two motifs, -1 if absent.
        strands: (N, 2) +1 (as in the matrix), -1 (reverse complement), 0 if absent.
        lengths: the two motifs' lengths.
    """

    ids: torch.Tensor
    labels: torch.Tensor
    starts: torch.Tensor
    strands: torch.Tensor
    lengths: tuple[int, int]

    def __len__(self) -> int:
        return self.ids.shape[0]

    @property
    def one_hot(self) -> torch.Tensor:
        """The sequences one-hot, (N, T, 4)."""
        return one_hot(self.ids)

    def site_mask(self, motif: int = 0) -> torch.Tensor:
        """True on the bases of motif ``motif``'s site (0 or 1), (N, T) bool."""
        return site_mask(self.starts[:, motif], self.lengths[motif], self.ids.shape[1])


@dataclass(frozen=True)
class PlantedTask:
    """Training, validation and test splits (no sequence in two) and the two matrices."""

    train: PlantedSplit
    val: PlantedSplit
    test: PlantedSplit
    motifs: tuple[JasparMatrix, JasparMatrix]
    rule: str


def planted_task(motifs: tuple[str, str] = ("MA0139.2", "MA0138.3"), *,
                 rule: str = "presence", n_train: int = 3000, n_val: int = 1000,
                 n_test: int = 1000, length: int = 120, p_other: float = 0.5,
                 min_gap: int = 20, flank: int = 10, seed: int = 0) -> PlantedTask:
    """Sites sampled from two JASPAR matrices, planted on either strand in background DNA.

    The background draws each base independently with a GC content of 41 % (no genome
    ships with attnlab). A site is a draw from the matrix's PWM, base by base, planted as
    drawn or as its reverse complement (probability 1/2 each). With ``rule="presence"``
    half the sequences (at random) hold a site of ``motifs[0]`` (label 1); every sequence,
    either class, holds with probability ``p_other`` a site of ``motifs[1]`` that does not
    overlap it. With ``rule="order"`` every sequence holds one site of each, at least
    ``min_gap`` bases apart and ``flank`` from the ends; the label is 1 when
    ``motifs[0]``'s comes first. Labels are what was planted: a weak draw or a chance match
    in the background makes some sequences hard, so no model need be perfect.

    Args:
        motifs: two of ``JASPAR_IDS``.
        rule: ``"presence"`` or ``"order"``.
        n_train, n_val, n_test: sizes of the three splits.
        length: T, bases per sequence.
        p_other: with ``"presence"``, the probability of a site of ``motifs[1]``.
        min_gap, flank: with ``"order"``, the fewest bases between the sites, and between
            a site and an end.
        seed: seeds NumPy's generator.

    Example:
        >>> task = planted_task(n_train=20, n_val=5, n_test=5, length=60, seed=0)
        >>> task.train.ids.shape, task.motifs[0].name, task.motifs[1].name
        (torch.Size([20, 60]), 'CTCF', 'REST')
        >>> bool((task.train.labels == (task.train.starts[:, 0] >= 0).long()).all())
        True
    """
    _check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    mats = tuple(jaspar_matrix(m) for m in motifs)
    if len(mats) != 2:
        raise ValueError(f"motifs must name two matrices, got {motifs}")
    lens = tuple(m.counts.shape[0] for m in mats)
    if rule not in ("presence", "order"):
        raise ValueError(f"rule must be 'presence' or 'order', got {rule!r}")
    need = sum(lens) + (2 * flank + min_gap if rule == "order" else 0)
    if length < need or min_gap < 0 or flank < 0:
        raise ValueError(f"length must be at least {need} and min_gap, flank >= 0, got "
                         f"length={length}, min_gap={min_gap}, flank={flank}")
    if not 0.0 <= p_other <= 1.0:
        raise ValueError(f"p_other must lie in [0, 1], got {p_other}")
    rng = np.random.default_rng(seed)
    cums = [m.pwm().numpy().cumsum(1) for m in mats]
    p_base = np.array([1 - _GC, _GC, _GC, 1 - _GC]) / 2
    n = n_train + n_val + n_test
    rows, labels, starts, strands, seen = [], [], [], [], set()
    while len(rows) < n:
        seq = rng.choice(4, size=length, p=p_base)
        y = int(rng.integers(0, 2))
        if rule == "presence":
            which = [k for k, on in enumerate((y, rng.random() < p_other)) if on]
            # non-overlapping starts, in a random order
            free = length - sum(lens[k] for k in which) + 1
            cut = np.sort(rng.choice(free, size=len(which), replace=False))
            order = rng.permutation(len(which))
            pos, at = {}, 0
            for j, k in enumerate(np.array(which)[order]):
                pos[int(k)] = int(cut[j]) + at
                at += lens[k]
        else:
            a, b = np.sort(rng.integers(flank, length - flank - max(lens) + 1, size=2))
            if b - a < max(lens) + min_gap:
                continue
            pos = {0: int(a), 1: int(b)} if y else {0: int(b), 1: int(a)}
        start, strand = [-1, -1], [0, 0]
        for k, s in pos.items():
            site = (rng.random((lens[k], 1)) > cums[k]).sum(1).clip(max=3)
            strand[k] = 1 if rng.random() < 0.5 else -1
            seq[s:s + lens[k]] = site if strand[k] == 1 else 3 - site[::-1]
            start[k] = s
        if seq.tobytes() in seen:
            continue
        seen.add(seq.tobytes())
        rows.append(seq)
        labels.append(y)
        starts.append(start)
        strands.append(strand)
    t = [torch.from_numpy(np.ascontiguousarray(np.array(a, dtype=np.int64)))
         for a in (rows, labels, starts, strands)]

    def split(a: int, b: int) -> PlantedSplit:
        return PlantedSplit(*(x[a:b].clone() for x in t), lengths=lens)

    return PlantedTask(split(0, n_train), split(n_train, n_train + n_val),
                       split(n_train + n_val, n), mats, rule)
