"""The ipywidgets explorers compute what attnlab computes, as the controls change."""

import numpy as np
import pytest
import torch

from attnlab import functional as AF
from attnlab.widgets import attention_widget, mask_widget, softmax_widget


def test_the_temperature_slider_recomputes_the_softmax():
    scores = torch.tensor([0.5, 1.0, 3.0])
    box = softmax_widget(scores, temperature=1.0)
    np.testing.assert_allclose(box.weights, AF.softmax(scores.double()).numpy())
    box.children[0].value = 0.25
    np.testing.assert_allclose(box.weights, AF.softmax(scores.double() / 0.25).numpy())
    assert box.weights.max() > 0.99


def test_the_layer_and_head_menus_pick_the_map():
    w = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    box = attention_widget(w)
    layer, head = box.children[0], box.children[1]
    np.testing.assert_allclose(box.current, w[0, 0].double().numpy())
    layer.value, head.value = 1, 2
    np.testing.assert_allclose(box.current, w[1, 2].double().numpy())
    head.value = "mean"
    np.testing.assert_allclose(box.current, w[1].double().mean(0).numpy())


def test_toggling_a_key_is_the_masked_softmax_and_an_empty_row_is_zero():
    scores = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    box = mask_widget(scores, causal=True)
    assert box.mask.tolist() == torch.tril(torch.ones(3, 3, dtype=torch.bool)).tolist()
    box.children[0].children[0].value = False        # query 0 now may attend to nothing
    expected = AF.masked_softmax(scores.double(), torch.as_tensor(box.mask)).numpy()
    np.testing.assert_allclose(box.weights, expected)
    assert box.weights[0].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(box.weights[1:].sum(-1), [1.0, 1.0])


@pytest.mark.parametrize("call, message", [
    (lambda: softmax_widget(torch.zeros(2, 2)), r"\(S,\)"),
    (lambda: softmax_widget([1.0], temperature=9.0), "temperature <= high"),
    (lambda: attention_widget(torch.zeros(2, 2)), r"\(L, H, T, S\)"),
    (lambda: mask_widget(torch.zeros(3)), r"\(T, S\)"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
