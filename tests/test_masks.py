"""attnlab.masks: the True = may-attend convention, alignment and errors."""

import pytest
import torch
import torch.nn.functional as F

import attnlab.efficient
import attnlab.pooling
from attnlab.masks import (
    causal_mask,
    leave_one_out_mask,
    length_mask,
    padding_mask,
    topk_mask,
    window_mask,
)


def test_causal_mask_is_sdpas_is_causal():
    g = torch.Generator().manual_seed(0)
    for T, S in [(1, 1), (4, 4), (3, 7), (7, 3), (1, 5)]:
        q, k, v = (torch.randn(2, n, 8, generator=g) for n in (T, S, S))
        torch.testing.assert_close(
            F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S)),
            F.scaled_dot_product_attention(q, k, v, is_causal=True),
        )


def test_causal_mask_entries_and_offset():
    m = causal_mask(3, 5, offset=2)
    for i in range(3):
        for j in range(5):
            assert bool(m[i, j]) == (j <= i + 2)
    assert causal_mask(4).dtype == torch.bool
    # bottom-right alignment: the last query sees every key
    assert causal_mask(2, 6, offset=4)[-1].all()


def test_padding_mask_entries_and_shape():
    m = padding_mask(torch.tensor([0, 2, 4]), 4)
    assert m.shape == (3, 1, 4) and m.dtype == torch.bool
    assert m[:, 0].int().tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert torch.equal(padding_mask([1, 2], 3), padding_mask(torch.tensor([1, 2]), 3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: causal_mask(0), "positive integer T"),
        (lambda: causal_mask(3, 0), "positive integer S"),
        (lambda: causal_mask(2.5), "positive integer T"),
        (lambda: causal_mask(2, offset=0.5), "integer offset"),
        (lambda: padding_mask([1, 5], 4), r"lengths must lie in \[0, S=4\], got \[1, 5\]"),
        (lambda: padding_mask([-1], 4), r"lengths must lie in \[0, S=4\]"),
        (lambda: padding_mask(torch.tensor([1.0, 2.0]), 4), "must be integers"),
        (lambda: padding_mask(torch.ones(2, 2, dtype=torch.long), 4), r"1-D sequence \(B,\)"),
        (lambda: padding_mask([], 4), "non-empty"),
        (lambda: padding_mask([1], 0), "positive integer S"),
        (lambda: window_mask(0), "positive integer T"),
        (lambda: window_mask(3, window=-1), r"window must be an integer >= 0, got -1"),
        (lambda: window_mask(3, window=1.5), r"window must be an integer"),
        (lambda: window_mask(3, offset=0.5), "integer offset"),
    ],
)
def test_mask_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_window_mask_entries_offset_and_the_old_name():
    for causal in (False, True):
        for T, S, w, off in [(5, 5, 1, 0), (3, 7, 2, 4), (4, 4, 0, 0), (6, 6, 10, 0)]:
            m = window_mask(T, S, w, causal=causal, offset=off)
            assert m.shape == (T, S) and m.dtype == torch.bool
            for i in range(T):
                for j in range(S):
                    ok = abs(i + off - j) <= w and (not causal or j <= i + off)
                    assert bool(m[i, j]) == ok
    # a window as long as the sequence is the plain causal mask
    assert torch.equal(window_mask(6, window=5, causal=True), causal_mask(6))
    assert torch.equal(window_mask(2, 6, window=9, causal=True, offset=4),
                       causal_mask(2, 6, offset=4))
    assert attnlab.efficient.window_mask is window_mask


def test_length_mask_entries_and_padding_mask_is_it_with_a_query_axis():
    m = length_mask(torch.tensor([0, 2, 4]), 4)
    assert m.shape == (3, 4) and m.dtype == torch.bool
    assert m.int().tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert torch.equal(padding_mask([3, 1], 5), length_mask([3, 1], 5)[:, None])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=3\], got \[4\]"):
        length_mask([4], 3)
    with pytest.raises(ValueError, match="positive integer T"):
        length_mask([1], 0)


def test_leave_one_out_mask_entries_and_the_old_name():
    m = leave_one_out_mask(4)
    assert m.shape == (4, 4) and not m.diagonal().any()
    assert int(m.sum()) == 4 * 3
    assert attnlab.pooling.leave_one_out_mask is leave_one_out_mask
    with pytest.raises(ValueError, match="S >= 2"):
        leave_one_out_mask(1)


def test_topk_mask_keeps_each_querys_k_largest():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 3, 5, 7, generator=g)  # (B, H, T, S)
    for k in (1, 3, 7):
        m = topk_mask(scores, k)
        assert m.shape == scores.shape and m.dtype == torch.bool
        assert (m.sum(-1) == k).all()
        kept_min = scores.masked_fill(~m, float("inf")).amin(-1)  # (B, H, T)
        dropped_max = scores.masked_fill(m, float("-inf")).amax(-1)
        assert (kept_min > dropped_max).all()
    # the weights' order is the scores' order: the same mask
    assert torch.equal(topk_mask(scores.softmax(-1), 2), topk_mask(scores, 2))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, S=7\], got 8"):
        topk_mask(scores, 8)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, S=7\], got 0"):
        topk_mask(scores, 0)


def test_local_and_chunked_attention_build_their_bands_from_the_masks():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 11, 4, generator=g) for _ in range(3))
    for causal in (False, True):
        for window in (0, 1, 3):
            want = F.scaled_dot_product_attention(
                q, k, v, attn_mask=window_mask(11, window=window, causal=causal))
            got = attnlab.efficient.local_attention(q, k, v, window=window, causal=causal)
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(
            attnlab.efficient.chunked_attention(q, k, v, causal=causal, block_size=3),
            F.scaled_dot_product_attention(q, k, v, is_causal=causal))
