"""attnlab.nas: the space, sampling and mutation, the models, the cost model, searches, Pareto."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attnlab.efficient import linear_attention, local_attention
from attnlab.functional import attention
from attnlab.layers import MultiHeadAttention
from attnlab.models import count_parameters
from attnlab.nas import (
    Architecture,
    CachedEvaluator,
    EvalConfig,
    Evaluation,
    SearchSpace,
    SwappableAttention,
    best_so_far,
    build_model,
    dominates,
    flops_per_example,
    local_search,
    parameter_count,
    pareto_front,
    random_search,
    regularized_evolution,
    reversal_token_task,
    token_accuracy,
    train_and_evaluate,
)

SPACE = SearchSpace()


def fake_eval(arch: Architecture) -> Evaluation:
    """A deterministic stand-in for training: accuracy from the design, no training."""
    good = (arch.attention == "softmax") + (arch.position == "sinusoidal")
    acc = 0.2 + 0.3 * good + arch.width / 640 + arch.depth / 100
    return Evaluation(arch, acc, parameter_count(arch, 11, 12), 1, 0.0)


# ------------------------------------------------------------------------ the space


def test_space_size_enumeration_and_membership():
    archs = list(SPACE)
    assert len(archs) == SPACE.size == 3 * 3 * 3 * 3 * 4
    assert len(set(archs)) == len(archs)
    assert all(SPACE.contains(a) for a in archs)
    assert not SPACE.contains(Architecture(8, 1, 64, "softmax", "none"))
    small = SearchSpace(heads=(1,), depth=(1, 2), width=(8,), attention=("softmax",),
                        position=("none", "learned"))
    assert small.size == 4 == len(list(small))


def test_space_rejects_bad_axes_and_invalid_combinations():
    with pytest.raises(ValueError, match="non-empty"):
        SearchSpace(heads=())
    with pytest.raises(ValueError, match="repeats"):
        SearchSpace(depth=(1, 1))
    with pytest.raises(ValueError, match="divisible"):
        SearchSpace(heads=(3,), width=(16,))
    with pytest.raises(ValueError, match="even head dimension"):
        SearchSpace(heads=(2,), width=(6,))
    with pytest.raises(ValueError, match="attention"):
        Architecture(1, 1, 16, "sparse", "none")
    with pytest.raises(ValueError, match="positive"):
        Architecture(0, 1, 16, "softmax", "none")


def test_sampling_is_seeded_and_covers_the_space():
    a = [SPACE.sample(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(0)
    seen = {SPACE.sample(rng) for _ in range(3000)}
    assert all(SPACE.contains(x) for x in seen)
    assert len(seen) > 0.9 * SPACE.size  # uniform draws reach almost every design
    for name, choices in SPACE.axes.items():
        assert {getattr(x, name) for x in seen} == set(choices)


def test_mutation_changes_exactly_one_axis_and_stays_inside():
    rng = random.Random(1)
    changed = set()
    for _ in range(500):
        parent = SPACE.sample(rng)
        child = SPACE.mutate(parent, rng)
        diff = [n for n in SPACE.axes if getattr(parent, n) != getattr(child, n)]
        assert len(diff) == 1 and SPACE.contains(child)
        changed.add(diff[0])
    assert changed == set(SPACE.axes)
    with pytest.raises(ValueError, match="not in the search space"):
        SPACE.mutate(Architecture(8, 1, 64, "softmax", "none"), rng)
    single = SearchSpace(heads=(1,), depth=(1,), width=(8,), attention=("softmax",),
                         position=("none",))
    with pytest.raises(ValueError, match="nothing to mutate"):
        single.mutate(next(iter(single)), rng)


def test_neighbours_are_the_designs_one_decision_away():
    for arch in random_search(SPACE, fake_eval, 5, seed=7):
        got = SPACE.neighbours(arch.arch)
        brute = [a for a in SPACE
                 if sum(getattr(a, n) != getattr(arch.arch, n) for n in SPACE.axes) == 1]
        assert sorted(got) == sorted(brute) and len(got) == len(set(got)) == 11
    rng = random.Random(0)
    parent = SPACE.sample(rng)
    assert all(SPACE.mutate(parent, rng) in SPACE.neighbours(parent) for _ in range(50))
    with pytest.raises(ValueError, match="not in the search space"):
        SPACE.neighbours(Architecture(8, 1, 64, "softmax", "none"))


# ------------------------------------------------------------------------ the model


@pytest.mark.parametrize("arch", [a for a in SPACE if a.depth == 1 and a.heads == 2])
def test_parameter_formula_matches_the_built_model(arch):
    model = build_model(arch, vocab_size=11, max_len=12)
    assert parameter_count(arch, 11, 12) == count_parameters(model)
    assert model(torch.zeros(3, 12, dtype=torch.long)).shape == (3, 12, 11)


def test_parameters_grow_with_depth_and_do_not_depend_on_attention():
    a = Architecture(2, 1, 32, "softmax", "none")
    b = Architecture(2, 2, 32, "softmax", "none")
    c = Architecture(2, 1, 32, "linear", "none")
    assert parameter_count(b, 11, 12) > parameter_count(a, 11, 12) == parameter_count(c, 11, 12)


def test_swappable_attention_equals_the_library_versions():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 16)
    ref = MultiHeadAttention(16, 4)
    for kind, core in (("softmax", lambda q, k, v: attention(q, k, v)),
                       ("linear", linear_attention),
                       ("local", lambda q, k, v: local_attention(q, k, v, window=2))):
        layer = SwappableAttention(16, 4, kind=kind, window=2)
        layer.load_state_dict(ref.state_dict())
        q, k, v = (ref.split_heads(t) for t in ref._project(x, None, None))
        expected = ref.out_proj(ref.merge_heads(core(q, k, v)))
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(SwappableAttention(16, 4)(x) * 0, torch.zeros(2, 9, 16))
    softmax = SwappableAttention(16, 4)
    softmax.load_state_dict(ref.state_dict())
    torch.testing.assert_close(softmax(x), ref(x), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="self-attention only"):
        softmax(x, causal=True)
    with pytest.raises(ValueError, match="kind"):
        SwappableAttention(16, 4, kind="sparse")


def test_positions_matter_only_where_the_design_has_them():
    ids = torch.randint(3, 11, (1, 12), generator=torch.Generator().manual_seed(0))
    flipped = ids.flip(1)
    for position, equivariant in (("none", True), ("sinusoidal", False), ("rotary", False)):
        model = build_model(Architecture(2, 2, 16, "softmax", position), 11, 12).eval()
        with torch.no_grad():
            same = torch.allclose(model(flipped), model(ids).flip(1), atol=1e-5)
        assert same == equivariant, position  # no positions: permutation-equivariant


def test_build_model_is_deterministic_and_leaves_the_global_seed_alone():
    arch = Architecture(2, 2, 32, "local", "learned")
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = build_model(arch, 11, 12)
    assert torch.equal(torch.rand(1), before)
    b = build_model(arch, 11, 12)
    c = build_model(arch, 11, 12, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


# ------------------------------------------------------------------- the cost model


def counted_flops(fn, *args) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops()


@pytest.mark.parametrize("attn", ["softmax", "linear"])
def test_flops_match_pytorchs_counter(attn):
    arch = Architecture(2, 2, 16, attn, "sinusoidal")
    model = build_model(arch, 11, 12).eval()
    counted = counted_flops(model, torch.zeros(1, 12, dtype=torch.long))
    if attn == "softmax":
        # the counter skips the CPU kernel of F.scaled_dot_product_attention: count the
        # two products of the reference computation, (B,H,T,D) @ (B,H,D,T) and @ (B,H,T,D)
        q = torch.randn(1, 2, 12, 8)
        core = counted_flops(lambda q: torch.softmax(q @ q.transpose(-2, -1), -1) @ q, q)
        assert core == 4 * 12 * 12 * 16
        counted += arch.depth * core
    assert counted == flops_per_example(arch, 12, 11)


def test_local_flops_count_the_window_pairs():
    T, C = 12, 16
    soft = flops_per_example(Architecture(1, 1, C, "softmax", "none"), T, 11)
    local = flops_per_example(Architecture(1, 1, C, "local", "none"), T, 11, window=2)
    pairs = sum(min(T - 1, i + 2) - max(0, i - 2) + 1 for i in range(T))
    assert soft - local == 4 * C * (T * T - pairs)
    wide = flops_per_example(Architecture(1, 1, C, "local", "none"), T, 11, window=T)
    assert wide == soft  # a window that covers everything is softmax attention
    with pytest.raises(ValueError, match="seq_len"):
        flops_per_example(Architecture(1, 1, C, "local", "none"), 0, 11)


# -------------------------------------------------------------------------- the task


def test_reversal_task_splits_are_disjoint_and_labels_reverse():
    task = reversal_token_task(8, 300, 50, 60, seed=2)
    assert task.x_train.shape == (300, 8) and task.x_val.shape == (50, 8)
    assert task.x_test.shape == (60, 8) and task.seq_len == 8
    for name in ("train", "val", "test"):
        x, y = task.split(name)
        assert torch.equal(y, x.flip(1))
    rows = [{tuple(r) for r in x.tolist()} for x in (task.x_train, task.x_val, task.x_test)]
    assert sum(map(len, rows)) == 410 == len(set.union(*rows))
    again = reversal_token_task(8, 300, 50, 60, seed=2)
    assert torch.equal(again.x_test, task.x_test)
    with pytest.raises(ValueError, match="n_val"):
        reversal_token_task(8, 10, 0, 5)
    with pytest.raises(ValueError, match=r"split must be 'train', 'val' or 'test', got 'dev'"):
        task.split("dev")


def test_train_and_evaluate_is_deterministic_and_learns():
    task = reversal_token_task(6, 600, 100, 100)
    config = EvalConfig(steps=100, batch_size=32)
    arch = Architecture(2, 1, 32, "softmax", "sinusoidal")
    a = train_and_evaluate(arch, task, config)
    b = train_and_evaluate(arch, task, config)
    assert a.accuracy == b.accuracy and a.params == parameter_count(arch, 11, 6)
    assert a.accuracy > 0.8  # reversal of 6 symbols is easy with absolute positions
    blind = train_and_evaluate(Architecture(2, 1, 32, "softmax", "none"), task, config)
    assert blind.accuracy < 0.5  # without positions the output cannot depend on t


# -------------------------------------------------------------------------- searches


def test_random_search_is_seeded_and_spends_the_budget():
    a = random_search(SPACE, fake_eval, 7, seed=4)
    b = random_search(SPACE, fake_eval, 7, seed=4)
    assert [e.arch for e in a] == [e.arch for e in b] and len(a) == 7
    assert [e.arch for e in random_search(SPACE, fake_eval, 7, seed=5)] != [e.arch for e in a]
    with pytest.raises(ValueError, match="budget"):
        random_search(SPACE, fake_eval, 0)


def test_evolution_starts_like_random_search_and_climbs():
    history = regularized_evolution(SPACE, fake_eval, 40, population_size=6, sample_size=3,
                                    seed=2)
    assert len(history) == 40
    start = random_search(SPACE, fake_eval, 6, seed=2)
    assert [e.arch for e in history[:6]] == [e.arch for e in start]
    assert all(SPACE.contains(e.arch) for e in history)
    curve = best_so_far(history)
    assert curve == sorted(curve) and curve[-1] > curve[5]
    best = max(history, key=lambda e: e.accuracy).arch
    assert best.attention == "softmax" and best.position == "sinusoidal"
    with pytest.raises(ValueError, match="sample_size"):
        regularized_evolution(SPACE, fake_eval, 5, population_size=2, sample_size=3)


def test_evolution_children_are_one_mutation_from_a_living_member():
    seen = []

    def record(arch):
        seen.append(arch)
        return fake_eval(arch)

    regularized_evolution(SPACE, record, 20, population_size=4, sample_size=2, seed=0)
    for i in range(4, 20):
        population = seen[i - 4 : i]  # aging: the last four evaluated are alive
        child = seen[i]
        assert any(sum(getattr(p, n) != getattr(child, n) for n in SPACE.axes) == 1
                   for p in population)


def test_warm_start_puts_the_initial_designs_first_in_both_searches():
    hand = Architecture(4, 2, 64, "softmax", "sinusoidal")
    rs = random_search(SPACE, fake_eval, 6, seed=3, initial=[hand])
    evo = regularized_evolution(SPACE, fake_eval, 6, population_size=4, seed=3, initial=[hand])
    assert rs[0].arch == evo[0].arch == hand and len(rs) == len(evo) == 6
    assert [e.arch for e in rs[1:4]] == [e.arch for e in evo[1:4]]  # the same random draws
    assert [e.arch for e in rs[1:]] == [e.arch for e in random_search(SPACE, fake_eval, 5,
                                                                      seed=3)]
    with pytest.raises(ValueError, match="exceed the budget"):
        random_search(SPACE, fake_eval, 1, initial=[hand, hand])
    with pytest.raises(ValueError, match="not in the search space"):
        random_search(SPACE, fake_eval, 3, initial=[Architecture(8, 1, 64, "softmax", "none")])
    with pytest.raises(ValueError, match="population"):
        regularized_evolution(SPACE, fake_eval, 9, population_size=2, sample_size=1,
                              initial=[hand] * 3)


def test_local_search_climbs_one_decision_at_a_time_from_the_start():
    start = Architecture(1, 1, 16, "linear", "none")
    history = local_search(SPACE, fake_eval, 30, start=start, seed=1)
    archs = [e.arch for e in history]
    assert archs[0] == start and len(archs) == 30 == len(set(archs))  # never twice
    # fake_eval rewards softmax, sinusoidal, width and depth, one axis at a time: the
    # climb reaches the top fitness with no restart, each design a neighbour of the last
    # design it moved to
    best = max(fake_eval(a).accuracy for a in SPACE)
    reached = next(i for i, e in enumerate(history) if e.accuracy == best)
    current = start
    for e in history[1 : reached + 1]:
        assert e.arch in SPACE.neighbours(current)
        if e.accuracy > fake_eval(current).accuracy:
            current = e.arch
    assert current == archs[reached]
    assert archs == [e.arch for e in local_search(SPACE, fake_eval, 30, start=start, seed=1)]
    assert archs != [e.arch for e in local_search(SPACE, fake_eval, 30, start=start, seed=2)]


def test_local_search_moves_only_to_a_fitter_neighbour_and_restarts_at_an_optimum():
    moves = []

    def record(arch):
        moves.append(arch)
        return fake_eval(arch)

    top = max(SPACE, key=lambda a: (fake_eval(a).accuracy, -fake_eval(a).params))
    history = local_search(SPACE, record, 14, start=top, seed=0)
    # the top is a local optimum: its 11 neighbours, then a restart elsewhere
    assert moves[0] == top and set(moves[1:12]) == set(SPACE.neighbours(top))
    assert moves[12] not in moves[:12] and len(history) == 14
    small = SearchSpace(heads=(1,), depth=(1, 2), width=(8,), attention=("softmax",),
                        position=("none", "learned"))
    assert len(local_search(small, fake_eval, 10)) == small.size  # the space ran out
    with pytest.raises(ValueError, match="not in the search space"):
        local_search(SPACE, fake_eval, 3, start=Architecture(8, 1, 64, "softmax", "none"))
    with pytest.raises(ValueError, match="budget"):
        local_search(SPACE, fake_eval, 0)


def test_token_accuracy_on_a_hand_made_model():
    class Echo(torch.nn.Module):
        def forward(self, ids):
            return torch.nn.functional.one_hot(ids, 5).float()  # predicts its input

    x = torch.tensor([[1, 2, 3], [4, 4, 0]])
    assert token_accuracy(Echo(), x, x) == 1.0
    assert token_accuracy(Echo(), x, x.flip(1)) == 2 / 6  # the middles match
    with pytest.raises(ValueError, match="N, T"):
        token_accuracy(Echo(), x, x[:1])


def test_cached_evaluator_trains_each_design_once():
    calls = []
    ev = CachedEvaluator(lambda a: calls.append(a) or fake_eval(a))
    arch = Architecture(1, 1, 16, "softmax", "none")
    assert ev(arch) is ev(arch)
    assert ev.calls == 2 and ev.trained == 1 and calls == [arch]


# ----------------------------------------------------------------------- Pareto front


def test_pareto_front_on_hand_made_points():
    maxmin = (True, False)  # accuracy up, cost down
    pts = [(0.9, 100), (0.8, 50), (0.85, 120), (0.95, 300), (0.5, 10), (0.5, 20)]
    assert pareto_front(pts, maxmin) == [0, 1, 3, 4]
    # ties on one objective: only the better on the other survives
    assert pareto_front([(0.9, 100), (0.9, 80), (0.7, 80)], maxmin) == [1]
    # duplicates of a front point are all kept; a duplicate of a dominated point is not
    assert pareto_front([(0.9, 100), (0.9, 100), (0.8, 200), (0.8, 200)], maxmin) == [0, 1]
    # maximising the wrong axis keeps the big models instead
    assert pareto_front(pts, (True, True)) == [3]
    assert pareto_front([], maxmin) == []
    assert pareto_front([(1.0, 5.0)], maxmin) == [0]
    three = [(0.9, 100, 5.0), (0.9, 100, 4.0), (0.8, 50, 9.0)]
    assert pareto_front(three, (True, False, False)) == [1, 2]
    assert pareto_front(torch.tensor([[0.9, 100.0], [0.8, 200.0]]), maxmin) == [0]


def test_pareto_front_matches_brute_force_on_random_points():
    g = torch.Generator().manual_seed(0)
    pts = torch.randint(0, 6, (60, 2), generator=g).tolist()  # many ties and duplicates
    front = pareto_front(pts, (True, False))
    for i, p in enumerate(pts):
        beaten = any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in pts)
        assert (i in front) == (not beaten)


def test_dominates_and_errors():
    assert dominates((1, 1), (1, 2), (True, False))
    assert not dominates((1, 2), (1, 1), (True, False))
    assert not dominates((2, 2), (1, 1), (True, False))  # better on one, worse on the other
    with pytest.raises(ValueError, match="objectives"):
        dominates((1, 2), (1,), (True, False))
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([(float("nan"), 1.0)], (True, False))
    with pytest.raises(ValueError, match="objectives"):
        pareto_front([(1.0, 2.0, 3.0)], (True, False))


def test_best_so_far_is_a_running_maximum():
    arch = Architecture(1, 1, 16, "softmax", "none")
    hist = [Evaluation(arch, a, 1, 1, 0.0) for a in (0.3, 0.1, 0.6, 0.2)]
    assert best_so_far(hist) == [0.3, 0.3, 0.6, 0.6]
    assert best_so_far([]) == []


def test_measure_latency_is_the_median_of_the_timed_forward_passes(monkeypatch):
    from attnlab.nas import search

    calls = []

    def fake_time_calls(fn, *args, repeats, warmup, device):
        calls.append((repeats, warmup, str(device)))
        fn(*args)
        return [0.3, 0.1, 0.5, 0.2, 0.9][:repeats]

    monkeypatch.setattr(search, "time_calls", fake_time_calls)
    model = torch.nn.Embedding(5, 3).train()
    assert search.measure_latency(model, torch.zeros(2, 4, dtype=torch.long), repeats=5) == 0.3
    assert calls == [(5, 1, "cpu")] and not model.training
    with pytest.raises(ValueError, match="repeats must be positive"):
        search.measure_latency(model, torch.zeros(2, 4, dtype=torch.long), repeats=0)
