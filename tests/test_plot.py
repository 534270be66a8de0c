"""attnlab.plot draws what it is given and refuses what does not fit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from attnlab.plot import alignment, attention_grid, bar, heatmap, learning_curves  # noqa: E402
from attnlab.train import History  # noqa: E402


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


def test_attention_grid_has_one_panel_per_layer_and_head():
    w = torch.softmax(torch.randn(2, 3, 4, 5), -1)
    fig = attention_grid(w, list("abcde"), list("wxyz"), title="maps")
    assert len(fig.axes) == 7  # six maps and one colour bar
    np.testing.assert_allclose(fig.axes[4].images[0].get_array(), w[1, 1].numpy(), rtol=1e-6)
    assert fig.axes[4].get_title() == "layer 2, head 2"
    fig = attention_grid([w[0], w[1]], row_labels=["model A", "model B"])
    assert len(fig.axes) == 7 and fig.axes[3].get_title() == "model B, head 1"
    with pytest.raises(ValueError, match="1 row_labels for L=2"):
        attention_grid(w, row_labels=["x"])
    with pytest.raises(ValueError, match=r"\(L, H, T, S\), got shape \(3, 4, 5\)"):
        attention_grid(w[0])


def test_every_map_shares_the_0_1_scale_and_a_grid_has_one_colour_bar():
    # two heads, one peaked and one flat: drawn on their own maxima both would look as dark
    peaked = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    flat = torch.full((2, 2), 0.5)
    for w in (peaked, flat):
        assert heatmap(w).images[0].get_clim() == (0.0, 1.0)
    fig = attention_grid(torch.stack([peaked, flat])[None])
    maps, bars = fig.axes[:2], fig.axes[2:]
    assert [ax.images[0].get_clim() for ax in maps] == [(0.0, 1.0)] * 2
    assert len(bars) == 1 and bars[0].get_ylabel() == "attention weight"
    # values that are not weights: scaled to the data on request, refused otherwise
    scores = torch.tensor([[0.0, 3.0], [1.0, 2.0]])
    assert heatmap(scores, vmax=None).images[0].get_clim() == (0.0, 3.0)
    with pytest.raises(ValueError, match=r"range from 0 to 3, outside the colour scale \[0, 1\]"):
        heatmap(scores)
    with pytest.raises(ValueError, match="outside the colour scale"):
        heatmap(-scores, vmax=None)
    assert heatmap(-scores, vmin=-3.0, vmax=0.0).images[0].get_clim() == (-3.0, 0.0)
    with pytest.raises(ValueError, match="vmin < vmax"):
        heatmap(peaked, vmin=1.0, vmax=1.0)
    grid = attention_grid((scores / 2)[None, None], vmax=None)
    assert grid.axes[0].images[0].get_clim() == (0.0, 1.5)
    with pytest.raises(ValueError, match="outside the colour scale"):
        attention_grid(scores[None, None])
    # round-off above 1 (a softmax can sum to 1.0000001) is not an error
    assert heatmap(torch.tensor([[1.0 + 1e-7]])).images[0].get_clim() == (0.0, 1.0)


def test_alignment_labels_source_and_output():
    ax = alignment(np.eye(3), "abc", "xyz")
    assert ax.get_xlabel() == "source" and ax.get_ylabel() == "output"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def test_learning_curves_plot_loss_and_metric():
    h = History(steps=[0, 10, 20], loss=[2.0, 1.0, 0.5], eval_steps=[10, 20],
                evals=[{"acc": 0.5}, {"acc": 0.9}])
    loss_ax, metric_ax = learning_curves({"a": h, "b": h}, "acc")
    assert list(loss_ax.lines[0].get_ydata()) == [2.0, 1.0, 0.5]
    assert list(metric_ax.lines[1].get_ydata()) == [0.5, 0.9]
    assert loss_ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="metric 'f1' is not in"):
        learning_curves(h, "f1")
