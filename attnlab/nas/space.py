"""The search space: one choice per axis (heads, depth, width, attention type, positions)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, fields

__all__ = ["ATTENTION_TYPES", "POSITIONAL_ENCODINGS", "Architecture", "SearchSpace"]


ATTENTION_TYPES = ("softmax", "linear", "local")
POSITIONAL_ENCODINGS = ("none", "sinusoidal", "learned", "rotary")


# ------------------------------------------------------------------------ the space


@dataclass(frozen=True, order=True)
class Architecture:
    """One point of a :class:`SearchSpace`: a design to build, train and compare.

    Frozen and ordered, so that it can key a cache and be sorted.

    Example:
        >>> a = Architecture(heads=2, depth=1, width=32, attention="softmax", position="learned")
        >>> str(a)
        'softmax/learned L1 C32 H2'
    """

    heads: int  # H, heads per attention layer
    depth: int  # number of Transformer blocks
    width: int  # C, the model width (D = C / H per head)
    attention: str  # one of ATTENTION_TYPES
    position: str  # one of POSITIONAL_ENCODINGS

    def __post_init__(self) -> None:
        for name in ("heads", "depth", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.width % self.heads:
            raise ValueError(f"width C={self.width} must be divisible by heads H={self.heads}")
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {self.attention!r}")
        if self.position not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"position must be one of {POSITIONAL_ENCODINGS}, got {self.position!r}"
            )
        if self.position == "rotary" and (self.width // self.heads) % 2:
            raise ValueError(f"rotary needs an even head dimension, D={self.width // self.heads}")

    def __str__(self) -> str:
        return f"{self.attention}/{self.position} L{self.depth} C{self.width} H{self.heads}"


@dataclass(frozen=True)
class SearchSpace:
    """The choices of each axis; an architecture takes one value per axis.

    Every combination must be a valid :class:`Architecture` (each width divisible by each head
    count, even head dimensions for rotary), so that sampling and mutation never need to
    reject a design, and the space's size is the product of the numbers of choices.

    Example:
        >>> space = SearchSpace()
        >>> space.size
        324
        >>> rng = random.Random(0)
        >>> a = space.sample(rng)
        >>> space.contains(a) and space.contains(space.mutate(a, rng))
        True
    """

    heads: tuple[int, ...] = (1, 2, 4)  # H
    depth: tuple[int, ...] = (1, 2, 3)  # blocks
    width: tuple[int, ...] = (16, 32, 64)  # C
    attention: tuple[str, ...] = ATTENTION_TYPES
    position: tuple[str, ...] = POSITIONAL_ENCODINGS

    def __post_init__(self) -> None:
        for name, choices in self.axes.items():
            if not isinstance(choices, tuple) or len(choices) == 0:
                raise ValueError(f"axis {name!r} needs a non-empty tuple of choices, "
                                 f"got {choices!r}")
            if len(set(choices)) != len(choices):
                raise ValueError(f"axis {name!r} repeats a choice: {choices!r}")
        for combo in itertools.product(self.heads, self.width, self.position):
            h, c, p = combo
            Architecture(h, self.depth[0], c, self.attention[0], p)  # raises if invalid

    @property
    def axes(self) -> dict[str, tuple]:
        """The axes by name, in the order of :class:`Architecture`'s fields."""
        return {f.name: getattr(self, f.name) for f in fields(Architecture)}

    @property
    def size(self) -> int:
        """The number of architectures, the product of the numbers of choices."""
        return math.prod(len(c) for c in self.axes.values())

    def contains(self, arch: Architecture) -> bool:
        """Whether every field of ``arch`` is one of this space's choices."""
        return all(getattr(arch, name) in choices for name, choices in self.axes.items())

    def __iter__(self) -> Iterator[Architecture]:
        """Every architecture of the space, in a fixed order."""
        for values in itertools.product(*self.axes.values()):
            yield Architecture(*values)

    def sample(self, rng: random.Random) -> Architecture:
        """An architecture drawn uniformly: one uniform choice per axis."""
        return Architecture(*(rng.choice(c) for c in self.axes.values()))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every design one decision away: ``arch`` with one axis set to another of its values.

        In a fixed order (axis by axis, then the axis's choices); a design has
        ``sum(len(choices) - 1)`` neighbours, the designs :meth:`mutate` can return.

        Example:
            >>> a = Architecture(2, 2, 64, "softmax", "sinusoidal")
            >>> n = SearchSpace().neighbours(a)
            >>> len(n), str(n[0])
            (11, 'softmax/sinusoidal L2 C64 H1')
        """
        if not self.contains(arch):
            raise ValueError(f"{arch} is not in the search space")
        out = []
        for name, choices in self.axes.items():
            for value in choices:
                if value != getattr(arch, name):
                    values = {n: getattr(arch, n) for n in self.axes}
                    values[name] = value
                    out.append(Architecture(**values))
        return out

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Change one axis (drawn uniformly among those with a choice) to another of its values.

        The child differs from its parent in exactly one field and stays inside the space.
        """
        if not self.contains(arch):
            raise ValueError(f"{arch} is not in the search space")
        names = [n for n, c in self.axes.items() if len(c) > 1]
        if not names:
            raise ValueError("every axis has a single choice: nothing to mutate")
        name = rng.choice(names)
        current = getattr(arch, name)
        value = rng.choice([c for c in self.axes[name] if c != current])
        values = {n: getattr(arch, n) for n in self.axes}
        values[name] = value
        return Architecture(**values)
