"""Searches over a space (random, regularized evolution, local), the Pareto front, and latency."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence

import torch
from torch import nn

from attnlab.nas.evaluate import Evaluation
from attnlab.nas.space import Architecture, SearchSpace
from attnlab.perf import time_calls

__all__ = [
    "random_search",
    "regularized_evolution",
    "local_search",
    "best_so_far",
    "dominates",
    "pareto_front",
    "measure_latency",
]


# -------------------------------------------------------------------------- searches


def _check_budget(budget: int) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")


def _fitness(e: Evaluation) -> tuple[float, int]:
    """Higher accuracy first; on a tie, fewer parameters."""
    return (e.accuracy, -e.params)


def _check_initial(space: SearchSpace, initial: Sequence[Architecture], budget: int) -> None:
    _check_budget(budget)
    if len(initial) > budget:
        raise ValueError(f"{len(initial)} initial designs exceed the budget of {budget}")
    for arch in initial:
        if not space.contains(arch):
            raise ValueError(f"initial design {arch} is not in the search space")


def random_search(space: SearchSpace, evaluate: Callable[[Architecture], Evaluation],
                  budget: int, seed: int = 0,
                  initial: Sequence[Architecture] = ()) -> list[Evaluation]:
    """Evaluate ``budget`` architectures drawn uniformly from ``space`` (Li & Talwalkar 2019).

    Args:
        space: the search space.
        evaluate: trains and measures one architecture.
        budget: the number of evaluations, ``initial`` included.
        seed: seeds the draws (a ``random.Random``).
        initial: designs to evaluate first (e.g. a hand-picked one); the remaining
            evaluations are uniform draws.

    Returns:
        The evaluations in the order they were made.

    Example:
        >>> ev = lambda a: Evaluation(a, a.width / 64, a.width, 1, 0.0)
        >>> len(random_search(SearchSpace(), ev, budget=5))
        5
    """
    _check_initial(space, initial, budget)
    rng = random.Random(seed)
    history = [evaluate(arch) for arch in initial]
    return history + [evaluate(space.sample(rng)) for _ in range(budget - len(initial))]


def regularized_evolution(space: SearchSpace, evaluate: Callable[[Architecture], Evaluation],
                          budget: int, population_size: int = 4, sample_size: int = 3,
                          seed: int = 0,
                          initial: Sequence[Architecture] = ()) -> list[Evaluation]:
    """Regularised (aging) evolution of Real et al. (2019) with ``budget`` evaluations.

    The first ``population_size`` evaluations are the ``initial`` designs (a warm start, as
    the Evolved Transformer's search started from the Transformer, So et al. 2019) followed
    by random designs, drawn exactly as :func:`random_search` draws them with the same seed
    and the same ``initial``. Then, each cycle: draw
    ``sample_size`` members of the population at random, take the fittest (highest accuracy,
    then fewer parameters) as the parent, evaluate a one-axis mutation of it, add the child
    and remove the *oldest* member -- not the worst: a design lives for a fixed number of
    cycles however lucky its evaluation was, which regularises the search against noise.

    Returns:
        The evaluations in the order they were made.

    Example:
        >>> ev = lambda a: Evaluation(a, a.width / 64, a.width, 1, 0.0)
        >>> history = regularized_evolution(SearchSpace(), ev, budget=8)
        >>> len(history), max(e.accuracy for e in history) >= history[0].accuracy
        (8, True)
    """
    _check_initial(space, initial, budget)
    if len(initial) > population_size:
        raise ValueError(f"{len(initial)} initial designs exceed the population of "
                         f"{population_size}")
    if population_size < 1 or not 1 <= sample_size <= population_size:
        raise ValueError(f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                         f"got {population_size} and {sample_size}")
    rng = random.Random(seed)
    population: deque[Evaluation] = deque()
    history: list[Evaluation] = []
    while len(history) < budget:
        if len(history) < len(initial):
            child = evaluate(initial[len(history)])
        elif len(history) < population_size:
            child = evaluate(space.sample(rng))
        else:
            contenders = rng.sample(list(population), sample_size)
            parent = max(contenders, key=_fitness)
            child = evaluate(space.mutate(parent.arch, rng))
        population.append(child)
        history.append(child)
        if len(population) > population_size:
            population.popleft()  # the oldest dies
    return history


def local_search(space: SearchSpace, evaluate: Callable[[Architecture], Evaluation],
                 budget: int, start: Architecture | None = None,
                 seed: int = 0) -> list[Evaluation]:
    """First-improvement hill climbing over one-decision neighbours, from ``start``.

    Evaluates ``start`` (a uniform draw if None), then visits the current design's
    :meth:`SearchSpace.neighbours` in an order shuffled by ``random.Random(seed)``,
    evaluating each one not evaluated yet, and moves to the first that is fitter (higher
    accuracy, then fewer parameters), where it starts over. A design none of whose
    neighbours is fitter is a local optimum: the search then restarts from a uniform
    draw among the designs not evaluated yet (random-restart hill climbing). A design is
    never evaluated twice: the search remembers every score it paid for.

    Args:
        space: the search space.
        evaluate: trains and measures one architecture.
        budget: the number of evaluations, ``start`` included.
        start: the first design (e.g. a hand-picked one); None draws it.
        seed: seeds the neighbour order and the restarts.

    Returns:
        The evaluations in the order they were made -- ``budget`` distinct designs, or
        every design of the space if it holds fewer.

    Example:
        >>> ev = lambda a: Evaluation(a, a.width / 64, a.width, 1, 0.0)
        >>> start = Architecture(1, 1, 16, "softmax", "none")
        >>> history = local_search(SearchSpace(), ev, budget=6, start=start)
        >>> len(history), max(e.accuracy for e in history)
        (6, 1.0)
    """
    _check_budget(budget)
    rng = random.Random(seed)
    if start is None:
        start = space.sample(rng)
    elif not space.contains(start):
        raise ValueError(f"start design {start} is not in the search space")
    seen: dict[Architecture, Evaluation] = {}
    history: list[Evaluation] = []

    def visit(arch: Architecture) -> Evaluation:
        seen[arch] = evaluate(arch)
        history.append(seen[arch])
        return seen[arch]

    current = visit(start)
    while len(history) < budget:
        order = space.neighbours(current.arch)
        rng.shuffle(order)
        for arch in order:
            if len(history) >= budget:
                break
            e = seen[arch] if arch in seen else visit(arch)
            if _fitness(e) > _fitness(current):
                current = e
                break
        else:  # a local optimum: restart from a design not evaluated yet
            fresh = [a for a in space if a not in seen]
            if not fresh:
                break
            current = visit(rng.choice(fresh))
    return history


def best_so_far(history: Sequence[Evaluation]) -> list[float]:
    """The best validation accuracy after each evaluation of a search.

    Example:
        >>> a = Architecture(1, 1, 16, "softmax", "none")
        >>> best_so_far([Evaluation(a, x, 1, 1, 0.0) for x in (0.2, 0.1, 0.5)])
        [0.2, 0.2, 0.5]
    """
    out: list[float] = []
    for e in history:
        out.append(e.accuracy if not out else max(out[-1], e.accuracy))
    return out


# ----------------------------------------------------------------------- Pareto front


def dominates(a: Sequence[float], b: Sequence[float], maximise: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one.

    Example:
        >>> dominates((0.9, 100), (0.8, 100), (True, False))
        True
        >>> dominates((0.9, 100), (0.9, 100), (True, False))   # equal points: neither
        False
    """
    if not len(a) == len(b) == len(maximise):
        raise ValueError(f"points of {len(a)} and {len(b)} objectives with {len(maximise)} "
                         "directions")
    better = False
    for x, y, up in zip(a, b, maximise):
        if (x < y) if up else (x > y):
            return False
        better |= (x > y) if up else (x < y)
    return better


def pareto_front(points: Sequence[Sequence[float]] | torch.Tensor,
                 maximise: Sequence[bool]) -> list[int]:
    """Indices of the points that no other point dominates, in increasing order.

    A point is kept unless another is at least as good on every objective and strictly better
    on one; so duplicates of a front point are all kept, and of two points tied on one
    objective only the better on the other survives. O(N^2 K), fine for a search's history.

    Args:
        points: N points of K objectives, e.g. ``[(accuracy, params), ...]``.
        maximise: K flags: True where larger is better (accuracy), False where smaller is
            (parameters, FLOPs, latency).

    Shape:
        points (N, K) -> a list of at most N indices.

    Example:
        >>> pareto_front([(0.9, 300), (0.8, 100), (0.7, 200), (0.9, 300)], (True, False))
        [0, 1, 3]
    """
    pts = [tuple(float(v) for v in p) for p in (points.tolist() if isinstance(
        points, torch.Tensor) else points)]
    for i, p in enumerate(pts):
        if len(p) != len(maximise):
            raise ValueError(f"point {i} has {len(p)} objectives, maximise has {len(maximise)}")
        if any(math.isnan(v) for v in p):
            raise ValueError(f"point {i} has a NaN objective: {p}")
    return [i for i, p in enumerate(pts)
            if not any(dominates(q, p, maximise) for j, q in enumerate(pts) if j != i)]


# ---------------------------------------------------------------------------- latency


def measure_latency(model: nn.Module, ids: torch.Tensor, repeats: int = 5) -> float:
    """The median wall-clock seconds of one forward pass over ``ids`` (after one warm-up).

    A measurement, not a cost model: it varies with the machine and its load.
    The calls are timed by :func:`attnlab.perf.time_calls`, waiting for the
    model's device; the median, not the fastest, so that one lucky call does
    not decide between two candidates.

    Shape:
        ids (B, T) int64.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    model.eval()
    with torch.no_grad():
        times = time_calls(model, ids, repeats=repeats, warmup=1, device=ids.device)
    return sorted(times)[len(times) // 2]
