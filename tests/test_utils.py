"""attnlab.utils: seeding and device choice."""

import random

import numpy as np
import pytest
import torch

from attnlab.utils import count_parameters, pick_device, set_seed


def test_set_seed_makes_all_generators_repeat():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    set_seed(7)
    first = draw()
    set_seed(7)
    assert draw() == first
    set_seed(8)
    assert draw() != first


def test_set_seed_returns_a_seeded_generator():
    a = torch.rand(3, generator=set_seed(3))
    b = torch.rand(3, generator=set_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        set_seed(bad)


def test_pick_device_order(monkeypatch):
    monkeypatch.delenv("ATTNLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("attnlab.utils._mps_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr("attnlab.utils._mps_available", lambda: False)
    assert pick_device() == torch.device("cpu")


def test_pick_device_override_and_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ATTNLAB_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")
    monkeypatch.setattr("attnlab.utils._mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        pick_device("gpu0")


def test_count_parameters_adds_modules_and_parameter_tensors():
    lin, token = torch.nn.Linear(3, 2), torch.nn.Parameter(torch.zeros(1, 1, 4))
    assert count_parameters(lin) == 8
    assert count_parameters(lin, token, lin) == 8 + 4 + 8
    assert count_parameters(torch.zeros(5)) == 0  # a tensor without gradients is no parameter
    lin.bias.requires_grad_(False)
    assert count_parameters(lin) == 6
    with pytest.raises(TypeError, match="at least one"):
        count_parameters()
    with pytest.raises(TypeError, match="got int"):
        count_parameters(3)
