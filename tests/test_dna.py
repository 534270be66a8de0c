"""attnlab.data.dna: the label rule, the planted sites and decoys, determinism, disjoint splits."""

from __future__ import annotations

import pytest
import torch

from attnlab.data.dna import (
    ALPHABET,
    CONSENSUS,
    DECOY_KINDS,
    PARTNER,
    decode,
    dna_task,
    encode,
    grammar_task,
    motif_pwm,
    one_hot,
    site_mask,
    window_distances,
)


@pytest.fixture(scope="module")
def task():
    return dna_task(n_train=600, n_test=300, length=80, seed=3)


def test_encode_decode_and_one_hot_by_hand():
    ids = encode("ACGTtgca")
    assert ids.tolist() == [0, 1, 2, 3, 3, 2, 1, 0]
    assert decode(ids) == "ACGTTGCA"
    x = one_hot(ids[None])
    assert x.shape == (1, 8, 4) and x.dtype == torch.float32
    for t, base in enumerate("ACGTTGCA"):
        assert x[0, t].tolist() == [float(b == base) for b in ALPHABET]
    with pytest.raises(ValueError, match="ACGT"):
        encode("ACGN")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        one_hot(ids)
    with pytest.raises(ValueError, match="0..3"):
        one_hot(torch.tensor([[0, 4]]))


def test_pwm_rows_sum_to_one_and_consensus_is_the_argmax():
    pwm = motif_pwm()
    assert pwm.shape == (len(CONSENSUS), 4)
    torch.testing.assert_close(pwm.sum(-1), torch.ones(len(CONSENSUS), dtype=torch.float64))
    assert decode(pwm.argmax(-1)) == CONSENSUS
    with pytest.raises(ValueError, match="same"):
        motif_pwm("ACG", (0.9, 0.9))


def test_window_distances_against_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 4, (3, 25), generator=g)
    ids[1, 7:17] = encode(CONSENSUS)
    d = window_distances(ids)
    assert d.shape == (3, 16)
    for b in range(3):
        s = decode(ids[b])
        for t in range(16):
            assert d[b, t] == sum(x != y for x, y in zip(s[t:t + 10], CONSENSUS))
    assert d[1, 7] == 0
    with pytest.raises(ValueError, match="shorter"):
        window_distances(ids[:, :5])


def test_site_mask():
    m = site_mask(torch.tensor([0, 3, -1]), 2, 5)
    assert m.int().tolist() == [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="starts"):
        site_mask(torch.tensor([4]), 2, 5)


def test_labels_follow_the_rule_with_a_margin(task):
    for split in (task.train, task.test):
        d = window_distances(split.ids)                       # (N, T - L + 1)
        nearest = d.amin(-1)
        assert torch.equal((nearest <= 2).long(), split.labels)
        assert (nearest[split.labels == 0] >= 3).all()        # the margin of one mutation
        pos = split.labels == 1
        assert torch.equal(split.site_start[pos], d[pos].argmin(-1))   # the site is the hit
        assert (split.site_start[~pos] == -1).all()
        # apart from the site, nothing comes within 2 mutations
        d[pos, split.site_start[pos]] = 99
        assert (d.amin(-1) >= 3).all()


def test_classes_are_balanced_and_decoys_do_not_predict_the_label(task):
    split = task.train
    assert 0.4 < split.labels.float().mean() < 0.6
    has_decoy = split.decoy_kind > 0
    assert torch.equal(has_decoy, split.decoy_start >= 0)
    rate = [has_decoy[split.labels == y].float().mean() for y in (0, 1)]
    assert abs(rate[0] - rate[1]) < 0.1 and 0.65 < rate[0] < 0.85
    assert set(split.decoy_kind.tolist()) == set(range(len(DECOY_KINDS)))
    both = (split.labels == 1) & has_decoy
    assert not (split.site_mask() & split.decoy_mask())[both].any()   # never overlapping


def test_decoys_are_what_they_say(task):
    split = task.test
    for i in range(len(split)):
        kind = DECOY_KINDS[split.decoy_kind[i]]
        if kind == "none":
            continue
        s = int(split.decoy_start[i])
        decoy = decode(split.ids[i, s:s + 10])
        if kind == "reversed":
            assert decoy == CONSENSUS[::-1]
        elif kind == "shuffled":
            assert sorted(decoy) == sorted(CONSENSUS)
        elif kind == "half":
            assert decoy[:5] == CONSENSUS[:5] or decoy[5:] == CONSENSUS[5:]
        else:
            assert sum(a != b for a, b in zip(decoy, CONSENSUS)) in (3, 4)


def test_gc_content_is_about_41_percent(task):
    ids = task.train.ids
    gc = ((ids == 1) | (ids == 2)).float().mean()
    assert 0.39 < gc < 0.45


def test_deterministic_and_disjoint(task):
    again = dna_task(n_train=600, n_test=300, length=80, seed=3)
    assert torch.equal(again.train.ids, task.train.ids)
    assert torch.equal(again.test.site_start, task.test.site_start)
    other = dna_task(n_train=600, n_test=300, length=80, seed=4)
    assert not torch.equal(other.train.ids, task.train.ids)
    train = {tuple(r) for r in task.train.ids.tolist()}
    test = {tuple(r) for r in task.test.ids.tolist()}
    assert len(train) == 600 and len(test) == 300 and not train & test


def test_argument_checks():
    with pytest.raises(ValueError, match="n_train"):
        dna_task(n_train=0)
    with pytest.raises(ValueError, match="length"):
        dna_task(n_train=5, n_test=5, length=20)
    with pytest.raises(ValueError, match="p_decoy"):
        dna_task(n_train=5, n_test=5, p_decoy=1.5)


def test_grammar_task_labels_are_the_order_of_the_two_motifs():
    task = grammar_task(n_train=300, n_test=100, length=60, min_gap=15, flank=5, seed=2)
    for split in (task.train, task.test):
        assert split.ids.shape[1] == 60 and split.one_hot.shape == (len(split), 60, 4)
        d_first = window_distances(split.ids, CONSENSUS)              # (N, T - L + 1)
        d_partner = window_distances(split.ids, PARTNER)
        # each motif occurs exactly once within 2 mutations, and exactly where planted
        assert ((d_first <= 2).sum(-1) == 1).all() and ((d_partner <= 2).sum(-1) == 1).all()
        assert torch.equal(d_first.argmin(-1), split.first_start)
        assert torch.equal(d_partner.argmin(-1), split.partner_start)
        assert torch.equal((split.first_start < split.partner_start).long(), split.labels)
        starts = torch.stack([split.first_start, split.partner_start])   # (2, N)
        assert ((starts[0] - starts[1]).abs() >= 10 + 15).all()         # the gap
        assert (starts >= 5).all() and (starts + 10 <= 60 - 5).all()     # the flanks
    assert 0.4 < task.train.labels.float().mean() < 0.6
    train = {tuple(r) for r in task.train.ids.tolist()}
    assert not train & {tuple(r) for r in task.test.ids.tolist()}
    again = grammar_task(n_train=300, n_test=100, length=60, min_gap=15, flank=5, seed=2)
    assert torch.equal(again.test.ids, task.test.ids)
    with pytest.raises(ValueError, match="length"):
        grammar_task(n_train=5, n_test=5, length=44, min_gap=15, flank=5)
