"""The kernel-free explorers: valid input only, deterministic output (nbval compares it)."""

import pytest

from attnlab.explorers import softmax_explorer


def test_the_html_is_deterministic_and_names_its_parts():
    a = softmax_explorer([1.0, 2.0, 3.0], labels=["a", "b", "<c>"])
    b = softmax_explorer([1.0, 2.0, 3.0], labels=["a", "b", "<c>"])
    html = a._repr_html_()
    assert html == b._repr_html_()
    assert html != softmax_explorer([1.0, 2.0, 3.5])._repr_html_()
    assert html.count("<rect") == 3 and "&lt;c&gt;" in html and "<c>" not in html
    assert 'aria-label="softmax temperature"' in html and 'role="img"' in html
    assert "http" not in html, "nothing is fetched"


@pytest.mark.parametrize("kwargs, message", [
    ({"scores": []}, "1 to 32 numbers"),
    ({"scores": [1.0, float("nan")]}, "finite"),
    ({"scores": [1.0, 2.0], "labels": ["a"]}, "1 labels for 2 scores"),
    ({"scores": [1.0], "temperature": 0.0, "low": 0.0}, "0 < low"),
    ({"scores": [1.0], "temperature": 9.0}, "temperature <= high"),
])
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        softmax_explorer(**kwargs)


def test_the_head_and_mask_explorers_check_their_input_and_are_deterministic():
    import numpy as np

    from attnlab.explorers import attention_explorer, mask_explorer

    w = np.full((2, 2, 3, 3), 1 / 3)
    assert attention_explorer(w)._repr_html_() == attention_explorer(w)._repr_html_()
    assert mask_explorer(np.zeros((3, 3)))._repr_html_() != \
        mask_explorer(np.zeros((3, 3)), causal=True)._repr_html_()
    with pytest.raises(ValueError, match=r"\(L, H, T, S\)"):
        attention_explorer(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        attention_explorer(-w)
    with pytest.raises(ValueError, match=r"\(T, S\)"):
        mask_explorer(np.zeros(3))
