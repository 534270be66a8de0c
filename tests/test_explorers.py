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
