"""attnlab.pooling: Nadaraya–Watson pooling against loops, attention and its limits."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.functional import attention
from attnlab.pooling import (
    NadarayaWatsonPooling,
    gaussian_kernel_scores,
    leave_one_out_mask,
    nadaraya_watson,
)

F64 = torch.float64


def make_qkv(lead=(), T=5, S=7, D=1, Dv=1, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, T, D, generator=g, dtype=dtype)
    k = torch.randn(*lead, S, D, generator=g, dtype=dtype)
    v = torch.randn(*lead, S, Dv, generator=g, dtype=dtype)
    return q, k, v


def naive_nadaraya_watson(q, k, v, h, mask=None):
    """The textbook formula with loops: Gaussian kernel weights, normalised by their sum."""
    T, S = q.shape[0], k.shape[0]
    out = torch.zeros(T, v.shape[1], dtype=F64)
    for i in range(T):
        kern = [math.exp(-float(((q[i] - k[j]) ** 2).sum()) / (2 * h * h))
                if mask is None or mask[i, j] else 0.0 for j in range(S)]
        total = sum(kern)
        out[i] = sum(w * v[j] for w, j in zip(kern, range(S))) / total
    return out


# ------------------------------------------------------------------------------ scores


@pytest.mark.parametrize("lead,D", [((), 1), ((), 3), ((2,), 1), ((2, 3), 4)], ids=str)
def test_scores_are_minus_squared_distance_over_two_h_squared(lead, D):
    q, k, _ = make_qkv(lead, T=4, S=6, D=D)
    h = 0.7
    expected = -torch.cdist(q, k) ** 2 / (2 * h**2)
    got = gaussian_kernel_scores(q, k, h)
    assert got.shape == (*lead, 4, 6)
    torch.testing.assert_close(got, expected)


def test_a_key_equal_to_the_query_scores_exactly_zero():
    x = torch.tensor([[0.1], [1e3], [-2.5]], dtype=torch.float32)  # large values: no cancellation
    s = gaussian_kernel_scores(x, x, 0.01)
    assert torch.equal(s.diagonal(), torch.zeros(3))
    assert not torch.signbit(s.diagonal()).any(), "the diagonal must be +0.0, not -0.0"
    assert (s <= 0).all()


def test_width_may_be_a_broadcasting_tensor_with_gradient():
    q, k, _ = make_qkv((2,), T=3, S=4)
    h = torch.tensor([0.5, 2.0], dtype=F64).reshape(2, 1, 1)  # one width per batch element
    s = gaussian_kernel_scores(q, k, h)
    torch.testing.assert_close(s[0], gaussian_kernel_scores(q[0], k[0], 0.5))
    torch.testing.assert_close(s[1], gaussian_kernel_scores(q[1], k[1], 2.0))


# ------------------------------------------------------------------------ the estimator


@pytest.mark.parametrize("D,Dv", [(1, 1), (2, 3)])
@pytest.mark.parametrize("h", [0.3, 1.0, 4.0])
def test_matches_the_loop_formula(D, Dv, h):
    q, k, v = make_qkv(T=4, S=6, D=D, Dv=Dv)
    torch.testing.assert_close(nadaraya_watson(q, k, v, h), naive_nadaraya_watson(q, k, v, h))


def test_matches_the_loop_formula_with_a_mask():
    q, k, v = make_qkv(T=6, S=6, D=2, Dv=2)
    mask = leave_one_out_mask(6)
    mask[0, 3] = False
    torch.testing.assert_close(nadaraya_watson(q, k, v, 0.8, mask),
                               naive_nadaraya_watson(q, k, v, 0.8, mask))


def test_weights_rows_sum_to_one_and_arg_max_is_the_nearest_key():
    q, k, v = make_qkv((3,), T=8, S=9, D=2)
    for h in (0.05, 0.5, 5.0):
        _, w = nadaraya_watson(q, k, v, h, need_weights=True)
        assert w.shape == (3, 8, 9)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 8, dtype=F64))
        assert torch.equal(w.argmax(-1), torch.cdist(q, k).argmin(-1))


def test_narrow_width_is_a_hard_lookup_and_wide_width_the_average():
    q, k, v = make_qkv(T=10, S=7, D=1, Dv=2)
    nearest = torch.cdist(q, k).argmin(-1)  # (T,)
    torch.testing.assert_close(nadaraya_watson(q, k, v, 1e-3), v[nearest])
    torch.testing.assert_close(nadaraya_watson(q, k, v, 1e4),
                               v.mean(0, keepdim=True).expand(10, 2), rtol=0, atol=1e-6)


@pytest.mark.parametrize("D", [1, 3])
def test_equals_scaled_dot_product_attention_on_augmented_features(D):
    # -|q-k|^2/(2h^2) = q.k/h^2 - |k|^2/(2h^2) - |q|^2/(2h^2); the last term is a row constant.
    q, k, v = make_qkv((2,), T=5, S=6, D=D, Dv=3)
    h = 0.9
    q_aug = torch.cat([q / h, torch.ones_like(q[..., :1])], dim=-1)
    k_aug = torch.cat([k / h, -(k**2).sum(-1, keepdim=True) / (2 * h**2)], dim=-1)
    expected, w_expected = nadaraya_watson(q, k, v, h, need_weights=True)
    out, w = attention(q_aug, k_aug, v, scale=1.0, need_weights=True)
    torch.testing.assert_close(w, w_expected)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(attention(q_aug, k_aug, v, scale=1.0), expected)


def test_permuting_keys_and_values_together_changes_nothing():
    q, k, v = make_qkv(T=5, S=8, D=2, Dv=2)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(nadaraya_watson(q, k[perm], v[perm], 0.6),
                               nadaraya_watson(q, k, v, 0.6))


def test_inputs_are_not_mutated():
    q, k, v = make_qkv(T=4, S=4)
    mask = leave_one_out_mask(4)
    copies = [x.clone() for x in (q, k, v, mask)]
    nadaraya_watson(q, k, v, 0.5, mask, need_weights=True)
    for before, after in zip(copies, (q, k, v, mask)):
        assert torch.equal(before, after)


def test_a_query_with_nothing_to_attend_gets_zeros():
    q, k, v = make_qkv(T=3, S=4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    out, w = nadaraya_watson(q, k, v, 0.5, mask, need_weights=True)
    assert torch.equal(out[1], torch.zeros(1, dtype=F64))
    assert torch.equal(w[1], torch.zeros(4, dtype=F64))
    assert torch.isfinite(out).all()


def test_gradient_in_the_width_is_correct():
    q, k, v = make_qkv(T=4, S=5, D=2)
    h = torch.tensor(0.7, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: nadaraya_watson(q, k, v, h), (h,))


def test_errors_name_the_problem():
    q, k, v = make_qkv(T=3, S=4, D=2)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite number"):
            nadaraya_watson(q, k, v, bad)
    with pytest.raises(ValueError, match="positive number or tensor"):
        nadaraya_watson(q, k, v, True)
    with pytest.raises(ValueError, match="positive and finite"):
        nadaraya_watson(q, k, v, torch.tensor([0.5, -0.5], dtype=F64))
    with pytest.raises(ValueError, match="floating-point tensor"):
        gaussian_kernel_scores(q, k, torch.tensor(1))
    with pytest.raises(ValueError, match="same last dimension D"):
        gaussian_kernel_scores(q, k[..., :1], 1.0)
    with pytest.raises(ValueError, match=r"k and v must agree on \(\.\.\., S\)"):
        nadaraya_watson(q, k, v[:3], 1.0)
    with pytest.raises(ValueError, match="bool"):
        nadaraya_watson(q, k, v, 1.0, torch.ones(3, 4))


# ------------------------------------------------------------------------ leave one out


def test_leave_one_out_mask_entries_and_errors():
    m = leave_one_out_mask(5)
    assert m.dtype == torch.bool and m.shape == (5, 5)
    for i in range(5):
        for j in range(5):
            assert bool(m[i, j]) == (i != j)
    for bad in (1, 0, 2.0, True):
        with pytest.raises(ValueError, match="integer S >= 2"):
            leave_one_out_mask(bad)


def test_leave_one_out_prediction_ignores_the_points_own_value():
    _, k, v = make_qkv(S=6, D=1)
    mask = leave_one_out_mask(6)
    base = nadaraya_watson(k, k, v, 0.5, mask)
    v2 = v.clone()
    v2[2] += 100.0
    changed = nadaraya_watson(k, k, v2, 0.5, mask)
    torch.testing.assert_close(changed[2], base[2])  # point 2 never sees its own value
    assert not torch.allclose(changed[0], base[0])  # the others do see it


# ------------------------------------------------------------------------------ module


def test_module_matches_the_function_and_stores_a_log_width():
    q, k, v = make_qkv(T=4, S=6)
    pool = NadarayaWatsonPooling(width=0.4, dtype=F64)
    assert isinstance(pool.log_width, torch.nn.Parameter)
    torch.testing.assert_close(pool.width, torch.tensor(0.4, dtype=F64))
    torch.testing.assert_close(pool(q, k, v), nadaraya_watson(q, k, v, 0.4))
    out, w = pool(q, k, v, need_weights=True)
    assert w.shape == (4, 6) and "width=0.4" in repr(pool)
    fixed = NadarayaWatsonPooling(width=0.4, learnable=False)
    assert list(fixed.parameters()) == [] and "log_width" in dict(fixed.named_buffers())


def test_module_errors():
    with pytest.raises(ValueError, match="positive finite number"):
        NadarayaWatsonPooling(width=0.0)
    q, k, v = make_qkv(T=4, S=6)
    with pytest.raises(ValueError, match="convert one of them"):
        NadarayaWatsonPooling(width=1.0, dtype=torch.float32)(q, k, v)


def _data(S=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (4 * torch.rand(S, generator=g, dtype=F64)).sort().values[:, None]  # (S, 1)
    y = torch.sin(2 * x) + 0.3 * torch.randn(S, 1, generator=g, dtype=F64)  # (S, 1)
    return x, y


def _fit(x, y, mask, steps=150):
    pool = NadarayaWatsonPooling(width=1.0, dtype=F64)
    opt = torch.optim.Adam(pool.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((pool(x, x, y, mask) - y) ** 2).mean()
        loss.backward()
        opt.step()
    return pool.width.item(), loss.item()


def test_without_the_mask_the_training_loss_drives_the_width_to_zero():
    x, y = _data()
    widths = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003]
    losses = [((nadaraya_watson(x, x, y, h) - y) ** 2).mean().item() for h in widths]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.01 * losses[0]
    h_self, _ = _fit(x, y, None)
    h_loo, _ = _fit(x, y, leave_one_out_mask(60))
    assert h_self < 0.5 * h_loo, (h_self, h_loo)


def test_leave_one_out_fit_finds_the_grid_minimum_of_its_loss():
    x, y = _data()
    mask = leave_one_out_mask(60)
    grid = torch.logspace(-2, 0.5, 60).tolist()
    grid_losses = [((nadaraya_watson(x, x, y, h, mask) - y) ** 2).mean().item() for h in grid]
    h_fit, _ = _fit(x, y, mask, steps=300)
    fit_loss = ((nadaraya_watson(x, x, y, h_fit, mask) - y) ** 2).mean().item()
    assert fit_loss <= min(grid_losses) + 1e-4
    assert 0.02 < h_fit < 1.0
