"""Synthetic user sessions for next-item recommendation, with structure beyond the last item.

A catalogue of V items (ids 1..V; 0 is padding) is split into G genres of V / G
items each. Each user has a session: a sequence of items, drawn step by step.

- **Popularity skew.** Within a genre, the item of popularity rank r is drawn
  with probability proportional to 1 / r^``item_skew``; genres themselves are
  popular in proportion to 1 / g^``genre_skew``. The items of a genre have
  consecutive ids, most popular first: genre g holds ids g * V/G + 1 onwards.
- **Genres a user stays in.** Each user has a few favourite genres (their
  *taste*, ``genres_per_user`` of them, drawn by genre popularity). An ordinary
  step picks one of them uniformly and draws an item of that genre.
- **Distractors.** With probability ``p_noise`` a step instead draws an item
  from the whole catalogue by popularity: the last item of a history is not
  always a good guide to the next one.
- **Partners several steps later.** A fraction of the items are *triggers*;
  each has a *partner* item (of any genre). ``partner_delay`` steps after a
  trigger, its partner follows with probability ``p_partner``.

A first-order Markov chain sees only the last item: it cannot know a user's
other genre, it is misled by a distractor, and it cannot see a trigger three
steps back. Each position records *why* its item was drawn (its kind:
``GENRE``, ``NOISE`` or ``PARTNER``; ``PAD`` for padding), so a
chapter can measure where a model wins.

Sessions are stored left-padded, (N, L): the last item of every session is in
the last column, which is how a model with learned positions reads them.

Example:
    >>> task = sessions_task(n_train=20, n_valid=5, n_test=10, seed=0)
    >>> len(task.train), len(task.valid), len(task.test)
    (20, 5, 10)
    >>> history, targets, kinds = leave_last_out(task.test, max_len=24)
    >>> tuple(history.shape), tuple(targets.shape)
    ((10, 24), (10,))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from attnlab._validate import shape_str

__all__ = [
    "PAD",
    "GENRE",
    "NOISE",
    "PARTNER",
    "KIND_NAMES",
    "SessionConfig",
    "Catalogue",
    "Sessions",
    "SessionsTask",
    "make_catalogue",
    "generate_sessions",
    "sessions_task",
    "next_item_probs",
    "leave_last_out",
    "next_item_batch",
]

#: The kind of a padding position.
PAD = 0
#: The kind of an item from one of the user's genres.
GENRE = 1
#: The kind of a random distractor.
NOISE = 2
#: The kind of the partner of a trigger item three steps earlier.
PARTNER = 3
#: The names of the kinds, indexed by kind.
KIND_NAMES = ("pad", "genre", "noise", "partner")


@dataclass(frozen=True)
class SessionConfig:
    """How sessions are drawn; the defaults make a task a CPU model learns in seconds."""

    num_items: int = 300  # V: item ids 1..V, 0 is padding
    num_genres: int = 10  # G: V / G = 30 items per genre
    genres_per_user: int = 2  # a user's taste: an ordinary step picks one of these uniformly
    min_len: int = 10  # the shortest session (items), so every history shows the taste
    max_len: int = 25  # the longest session; a model reading 24 items sees every history
    p_noise: float = 0.15  # a distractor: an item of any genre, drawn by popularity
    trigger_fraction: float = 0.2  # the share of items that have a partner
    partner_delay: int = 3  # a trigger's partner comes this many steps after it ...
    p_partner: float = 0.9  # ... with this probability
    item_skew: float = 1.0  # Zipf exponent of popularity within a genre (1: a long tail)
    genre_skew: float = 0.5  # Zipf exponent of the genres' popularity

    def __post_init__(self) -> None:
        ints = ("num_items", "num_genres", "genres_per_user", "min_len", "max_len",
                "partner_delay")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.num_items % self.num_genres:
            raise ValueError(f"num_items={self.num_items} must be a multiple of "
                             f"num_genres={self.num_genres}")
        if self.genres_per_user > self.num_genres:
            raise ValueError(f"genres_per_user={self.genres_per_user} exceeds "
                             f"num_genres={self.num_genres}")
        if not 2 <= self.min_len <= self.max_len:
            raise ValueError(f"need 2 <= min_len <= max_len, got min_len={self.min_len}, "
                             f"max_len={self.max_len}")
        for name in ("p_noise", "p_partner"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.p_noise == 1.0:
            raise ValueError("p_noise=1 leaves no step to the user's genres")
        if not 0.0 <= self.trigger_fraction <= 0.5:
            raise ValueError("trigger_fraction must lie in [0, 0.5] (each trigger needs a "
                             f"partner that is no trigger), got {self.trigger_fraction}")
        for name in ("item_skew", "genre_skew"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def items_per_genre(self) -> int:
        """V / G."""
        return self.num_items // self.num_genres


@dataclass(frozen=True)
class Catalogue:
    """The items: their genres, popularity and partners. Index 0 is padding throughout.

    Shape:
        genre (V + 1,) int64, -1 at 0; popularity (V + 1,) float64 summing to 1,
        0 at 0 (the distribution of a distractor); partner (V + 1,) int64, the
        partner's id for a trigger and 0 otherwise.
    """

    genre: torch.Tensor = field(repr=False)
    popularity: torch.Tensor = field(repr=False)
    partner: torch.Tensor = field(repr=False)

    @property
    def num_items(self) -> int:
        """V."""
        return self.genre.shape[0] - 1

    @property
    def triggers(self) -> torch.Tensor:
        """The ids of the items that have a partner, ascending."""
        return torch.nonzero(self.partner > 0).flatten()


@dataclass(frozen=True)
class Sessions:
    """A set of users' sessions, left-padded.

    Shape:
        items (N, L) int64 ids (0 = padding on the left); kinds (N, L) int64,
        one of ``PAD``, ``GENRE``, ``NOISE``, ``PARTNER``;
        lengths (N,); users (N,) ids unique across a task's splits; tastes
        (N, genres_per_user), each user's genres.
    """

    items: torch.Tensor = field(repr=False)
    kinds: torch.Tensor = field(repr=False)
    lengths: torch.Tensor = field(repr=False)
    users: torch.Tensor = field(repr=False)
    tastes: torch.Tensor = field(repr=False)

    def __len__(self) -> int:
        return self.items.shape[0]


@dataclass(frozen=True)
class SessionsTask:
    """A catalogue and three disjoint sets of users: train, valid and test."""

    config: SessionConfig
    catalogue: Catalogue
    train: Sessions
    valid: Sessions
    test: Sessions


def make_catalogue(config: SessionConfig, rng: np.random.Generator) -> Catalogue:
    """Genres, popularity and trigger -> partner pairs of the items.

    Args:
        config: the :class:`SessionConfig`.
        rng: NumPy's random generator (chooses the triggers and their partners).

    Returns:
        A :class:`Catalogue`.

    Example:
        >>> cat = make_catalogue(SessionConfig(), np.random.default_rng(0))
        >>> cat.num_items, cat.genre[1:4].tolist(), cat.genre[31].item()
        (300, [0, 0, 0], 1)
        >>> len(cat.triggers), round(float(cat.popularity.sum()), 6)
        (60, 1.0)
    """
    c = config
    m = c.items_per_genre
    within = 1.0 / np.arange(1, m + 1) ** c.item_skew  # (m,) by popularity rank
    within /= within.sum()
    genre_pop = 1.0 / np.arange(1, c.num_genres + 1) ** c.genre_skew  # (G,)
    genre_pop /= genre_pop.sum()
    popularity = np.zeros(c.num_items + 1)
    popularity[1:] = (genre_pop[:, None] * within[None, :]).reshape(-1)  # genre-major ids
    genre = np.concatenate([[-1], np.repeat(np.arange(c.num_genres), m)])
    n_triggers = round(c.trigger_fraction * c.num_items)
    order = rng.permutation(np.arange(1, c.num_items + 1))
    triggers, others = order[:n_triggers], order[n_triggers:]
    partner = np.zeros(c.num_items + 1, dtype=np.int64)
    partner[triggers] = rng.choice(others, size=n_triggers, replace=False)
    return Catalogue(genre=torch.from_numpy(genre.astype(np.int64)),
                     popularity=torch.from_numpy(popularity),
                     partner=torch.from_numpy(partner))


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: the index whose interval holds each uniform u."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def generate_sessions(catalogue: Catalogue, config: SessionConfig, n: int,
                      rng: np.random.Generator, first_user: int = 0) -> Sessions:
    """Draw ``n`` users' sessions (see the module's docstring for the process).

    Args:
        catalogue: the items, from :func:`make_catalogue`.
        config: the :class:`SessionConfig` the catalogue was made with.
        n: the number of users.
        rng: NumPy's random generator.
        first_user: the id of the first user; the others follow.

    Returns:
        :class:`Sessions` with L = ``config.max_len`` columns.

    Example:
        >>> cfg = SessionConfig()
        >>> rng = np.random.default_rng(0)
        >>> s = generate_sessions(make_catalogue(cfg, rng), cfg, 4, rng)
        >>> tuple(s.items.shape), bool((s.lengths >= cfg.min_len).all())
        ((4, 25), True)
    """
    c = config
    if catalogue.num_items != c.num_items:
        raise ValueError(f"the catalogue has {catalogue.num_items} items, the config "
                         f"{c.num_items}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    m, L = c.items_per_genre, c.max_len
    pop = catalogue.popularity.numpy()
    partner = catalogue.partner.numpy()
    genre_pop = pop[1:].reshape(c.num_genres, m).sum(axis=1)  # (G,)
    within_cdf = np.cumsum(pop[1:m + 1] / pop[1:m + 1].sum())  # (m,): same shape in every genre
    global_cdf = np.cumsum(pop[1:])  # (V,)
    # a user's taste: genres drawn without replacement by popularity (Gumbel top-k)
    keys = np.log(genre_pop)[None, :] + rng.gumbel(size=(n, c.num_genres))  # (n, G)
    tastes = np.argsort(-keys, axis=1)[:, : c.genres_per_user]  # (n, genres_per_user)
    items = np.zeros((n, L), dtype=np.int64)
    kinds = np.zeros((n, L), dtype=np.int64)
    rows = np.arange(n)
    for t in range(L):
        pick = tastes[rows, rng.integers(c.genres_per_user, size=n)]  # (n,) a genre each
        step = pick * m + _draw(within_cdf, rng.random(n)) + 1
        kind = np.full(n, GENRE)
        noise = rng.random(n) < c.p_noise
        step = np.where(noise, _draw(global_cdf, rng.random(n)) + 1, step)
        kind[noise] = NOISE
        if t >= c.partner_delay:
            due = partner[items[:, t - c.partner_delay]]  # (n,) 0 where no trigger
            follow = (due > 0) & (rng.random(n) < c.p_partner)
            step = np.where(follow, due, step)
            kind[follow] = PARTNER
        items[:, t], kinds[:, t] = step, kind
    lengths = rng.integers(c.min_len, L + 1, size=n)  # (n,)
    # keep the first `length` steps of each session and move them to the right end
    shift = (np.arange(L)[None, :] - (L - lengths)[:, None])  # (n, L): source column
    keep = shift >= 0
    src = np.where(keep, shift, 0)
    items = np.where(keep, np.take_along_axis(items, src, axis=1), 0)
    kinds = np.where(keep, np.take_along_axis(kinds, src, axis=1), PAD)
    return Sessions(items=torch.from_numpy(items), kinds=torch.from_numpy(kinds),
                    lengths=torch.from_numpy(lengths.astype(np.int64)),
                    users=torch.arange(first_user, first_user + n),
                    tastes=torch.from_numpy(tastes.astype(np.int64)))


def sessions_task(n_train: int = 4000, n_valid: int = 500, n_test: int = 1000, *,
                  config: SessionConfig | None = None, seed: int = 0) -> SessionsTask:
    """A catalogue and disjoint train, valid and test users, all from one seed.

    The splits share the catalogue (the same items, genres and partners) but
    no user: each user has one session, and the user ids of the splits are
    disjoint ranges.

    Args:
        n_train, n_valid, n_test: numbers of users (n_valid may be 0).
        config: the :class:`SessionConfig` (default: its defaults).
        seed: the seed of the generator.

    Returns:
        A :class:`SessionsTask`.

    Example:
        >>> task = sessions_task(30, 0, 10, seed=1)
        >>> task.train.users.max() < task.test.users.min(), len(task.valid)
        (tensor(True), 0)
    """
    config = SessionConfig() if config is None else config
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(n_valid, bool) or not isinstance(n_valid, int) or n_valid < 0:
        raise ValueError(f"n_valid must be a non-negative integer, got {n_valid!r}")
    rng = np.random.default_rng(seed)
    catalogue = make_catalogue(config, rng)
    train = generate_sessions(catalogue, config, n_train, rng, first_user=0)
    if n_valid:
        valid = generate_sessions(catalogue, config, n_valid, rng, first_user=n_train)
    else:
        empty = torch.zeros(0, config.max_len, dtype=torch.int64)
        valid = Sessions(empty, empty.clone(), torch.zeros(0, dtype=torch.int64),
                         torch.zeros(0, dtype=torch.int64),
                         torch.zeros(0, config.genres_per_user, dtype=torch.int64))
    test = generate_sessions(catalogue, config, n_test, rng, first_user=n_train + n_valid)
    return SessionsTask(config, catalogue, train, valid, test)


def next_item_probs(catalogue: Catalogue, config: SessionConfig, history: torch.Tensor,
                    tastes: torch.Tensor) -> torch.Tensor:
    """The generator's own distribution of the next item, given the history and the taste.

    Ranking items by it is the best any recommender can do in expectation (an
    *oracle*: a model must infer the taste from the history; the oracle is told).

    Args:
        catalogue: the items.
        config: the :class:`SessionConfig` the sessions were drawn with.
        history: (N, T) left-padded ids; the step that follows its last column
            is predicted.
        tastes: (N, genres_per_user) each user's genres.

    Shape:
        history (N, T), tastes (N, g) -> probabilities (N, V + 1), 0 at padding.

    Example:
        >>> cfg = SessionConfig()
        >>> task = sessions_task(5, 0, 3, config=cfg, seed=0)
        >>> history, targets, _ = leave_last_out(task.test, 24)
        >>> p = next_item_probs(task.catalogue, cfg, history, task.test.tastes)
        >>> tuple(p.shape), bool(torch.allclose(p.sum(1), torch.ones(3, dtype=p.dtype)))
        ((3, 301), True)
    """
    c = config
    if catalogue.num_items != c.num_items:
        raise ValueError(f"the catalogue has {catalogue.num_items} items, the config "
                         f"{c.num_items}")
    if not isinstance(history, torch.Tensor) or history.dim() != 2:
        got = shape_str(history) if isinstance(history, torch.Tensor) else type(history).__name__
        raise ValueError(f"history must be (N, T) item ids, got {got}")
    N = history.shape[0]
    if not isinstance(tastes, torch.Tensor) or tastes.shape != (N, c.genres_per_user):
        got = shape_str(tastes) if isinstance(tastes, torch.Tensor) else type(tastes).__name__
        raise ValueError(f"tastes must be (N, genres_per_user) = ({N}, {c.genres_per_user}) "
                         f"for history {shape_str(history)}, got {got}")
    m = c.items_per_genre
    pop = catalogue.popularity  # (V + 1,)
    within = pop[1:].view(c.num_genres, m)
    within = within / within.sum(dim=1, keepdim=True)  # (G, m): each genre's own popularity
    cols = (tastes[:, :, None] * m + torch.arange(1, m + 1)).flatten(1)  # (N, g * m) item ids
    probs = torch.zeros(N, c.num_items + 1, dtype=pop.dtype)  # a taste genre, uniformly:
    probs.scatter_add_(1, cols, (within[tastes] / c.genres_per_user).flatten(1))
    probs = c.p_noise * pop[None, :] + (1 - c.p_noise) * probs  # (N, V + 1)
    if history.shape[1] >= c.partner_delay:
        due = catalogue.partner[history[:, history.shape[1] - c.partner_delay]]  # (N,)
        has = due > 0
        probs[has] *= 1 - c.p_partner
        probs[has, due[has]] += c.p_partner
    return probs


def _check_max_len(max_len: int, sessions: Sessions) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}")
    if sessions.items.dim() != 2:
        raise ValueError(f"sessions.items must be (N, L), got {shape_str(sessions.items)}")


def _window(x: torch.Tensor, width: int) -> torch.Tensor:
    """The last ``width`` columns of left-padded (N, L) ids, padded on the left if L < width."""
    N, L = x.shape
    if L >= width:
        return x[:, L - width:]
    return torch.cat([x.new_zeros(N, width - L), x], dim=1)  # (N, width)


def leave_last_out(sessions: Sessions, max_len: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split each session into its history and its last item (the target to predict).

    The history keeps its ``max_len`` most recent items, left-padded with 0.

    Args:
        sessions: the :class:`Sessions` to evaluate on.
        max_len: T, the number of items a model reads.

    Returns:
        history (N, T) ids, targets (N,) ids and the targets' kinds (N,).

    Example:
        >>> s = Sessions(torch.tensor([[0, 5, 6, 7]]), torch.tensor([[0, 1, 1, 3]]),
        ...              torch.tensor([3]), torch.tensor([0]), torch.tensor([[0]]))
        >>> history, targets, kinds = leave_last_out(s, max_len=4)
        >>> history.tolist(), targets.tolist(), kinds.tolist()
        ([[0, 0, 5, 6]], [7], [3])
    """
    _check_max_len(max_len, sessions)
    return (_window(sessions.items[:, :-1], max_len), sessions.items[:, -1].clone(),
            sessions.kinds[:, -1].clone())


def next_item_batch(sessions: Sessions, index: torch.Tensor, max_len: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-item targets for training on every position of some sessions.

    Position t of the inputs holds item t of a session and position t of the
    targets item t + 1; both keep the ``max_len`` most recent steps. A target
    is 0 (no loss) where its input is padding: the first item of a session is
    never predicted from nothing.

    Args:
        sessions: the training :class:`Sessions`.
        index: (B,) the rows to use.
        max_len: T.

    Shape:
        index (B,) -> inputs (B, T), targets (B, T).

    Example:
        >>> s = Sessions(torch.tensor([[0, 5, 6, 7]]), torch.tensor([[0, 1, 1, 1]]),
        ...              torch.tensor([3]), torch.tensor([0]), torch.tensor([[0]]))
        >>> inputs, targets = next_item_batch(s, torch.tensor([0]), max_len=3)
        >>> inputs.tolist(), targets.tolist()
        ([[0, 5, 6]], [[0, 6, 7]])
    """
    _check_max_len(max_len, sessions)
    if not isinstance(index, torch.Tensor) or index.dim() != 1:
        got = shape_str(index) if isinstance(index, torch.Tensor) else type(index).__name__
        raise ValueError(f"index must be a 1-D (B,) tensor of rows, got {got}")
    items = sessions.items[index]  # (B, L)
    inputs = _window(items[:, :-1], max_len)  # (B, T)
    targets = _window(items[:, 1:], max_len)  # (B, T)
    return inputs, targets.masked_fill(inputs == 0, 0)
