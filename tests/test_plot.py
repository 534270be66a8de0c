"""attnlab.plot draws what it is given and refuses what does not fit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from attnlab.plot import bar, heatmap  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_heatmap_draws_weights_with_labels():
    w = torch.softmax(torch.randn(3, 4), -1)
    ax = heatmap(w, list("abcd"), list("xyz"), title="t", annotate=True)
    np.testing.assert_allclose(ax.images[0].get_array(), w.numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    assert len(ax.texts) == 12 and ax.get_title() == "t"


def test_heatmap_errors():
    with pytest.raises(ValueError, match=r"2-D weights \(T, S\), got shape \(2, 3, 4\)"):
        heatmap(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="3 x_labels for S=4"):
        heatmap(np.ones((2, 4)), list("abc"))
    with pytest.raises(ValueError, match="NaN"):
        heatmap(np.array([[np.nan]]))


def test_bar_single_and_grouped():
    ax = bar([0.1, 0.9], ["a", "b"])
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.1, 0.9])
    assert len(ax.texts) == 2  # value labels
    ax = bar({"one": np.array([1.0, 2.0, 3.0]), "two": torch.tensor([3.0, 2.0, 1.0])})
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one", "two"]


def test_bar_errors():
    with pytest.raises(ValueError, match="equal length"):
        bar({"a": [1, 2], "b": [1, 2, 3]})
    with pytest.raises(ValueError, match="3 labels for 2 values"):
        bar([1, 2], list("abc"))
