"""attnlab.data.motifs (JASPAR matrices, planted sites) and the readers of attnlab.models.motif."""

from __future__ import annotations

import pytest
import torch

from attnlab.data.dna import decode, encode, one_hot
from attnlab.data.motifs import (
    JASPAR_IDS,
    jaspar_matrix,
    planted_task,
    reverse_complement,
)
from attnlab.models.motif import (
    MotifCNN,
    MotifCNNConfig,
    aligned_pwm,
    compare_pwms,
    in_silico_mutagenesis,
    pwm_scan,
)

# what each shipped file must hold: factor, positions, sites (from JASPAR 2024)
SHIPPED = {"MA0139.2": ("CTCF", 15, 913), "MA0080.7": ("Spi1", 13, 105198),
           "MA0035.5": ("GATA1", 7, 71828), "MA0138.3": ("REST", 20, 1606)}


def test_every_shipped_matrix_loads_offline_with_its_id_name_and_counts():
    assert set(JASPAR_IDS) == set(SHIPPED)
    for jaspar_id, (name, length, sites) in SHIPPED.items():
        m = jaspar_matrix(jaspar_id)
        assert (m.id, m.name) == (jaspar_id, name)
        assert m.counts.shape == (length, 4) and m.counts.dtype == torch.float64
        assert (m.counts >= 0).all()
        # every position counts the aligned sites: all of them in most matrices, a few
        # fewer at some positions in JASPAR's own CTCF and REST files (within 1 %)
        totals = m.counts.sum(-1)
        assert totals.max() == sites and (totals >= 0.99 * sites).all()
        if name in ("Spi1", "GATA1"):
            assert (totals == sites).all()
        assert m.sites == sites
        torch.testing.assert_close(m.pwm().sum(-1), torch.ones(length, dtype=torch.float64))
        assert (m.pwm(pseudocount=1.0) > 0).all()
    # the consensus of CTCF's matrix holds the core CCAC-CAG-GGGG-C of its known motif
    assert decode(jaspar_matrix("MA0139.2").pwm().argmax(-1)) == "GCCACCAGGGGGCGC"
    with pytest.raises(ValueError, match="MA9999.1"):
        jaspar_matrix("MA9999.1")


def test_reverse_complement():
    assert decode(reverse_complement(encode("AACGT"))) == "ACGTT"
    ids = torch.randint(0, 4, (3, 9), generator=torch.Generator().manual_seed(0))
    assert torch.equal(reverse_complement(reverse_complement(ids)), ids)


@pytest.fixture(scope="module")
def presence():
    return planted_task(n_train=400, n_val=100, n_test=200, length=80, seed=1)


def _site(split, i, k, L):
    s = int(split.starts[i, k])
    site = split.ids[i, s:s + L]
    return site if split.strands[i, k] == 1 else reverse_complement(site)


def test_presence_sites_are_planted_on_both_strands_and_score_high(presence):
    L = presence.motifs[0].counts.shape[0]
    pwm = presence.motifs[0].pwm()
    for split in (presence.train, presence.val, presence.test):
        assert torch.equal(split.labels, (split.starts[:, 0] >= 0).long())
        assert torch.equal(split.starts >= 0, split.strands != 0)
    split = presence.train
    assert 0.4 < split.labels.float().mean() < 0.6
    pos = (split.labels == 1).nonzero()[:, 0]
    strands = split.strands[pos, 0]
    assert 0.35 < (strands == -1).float().mean() < 0.65            # both strands
    # read on its own strand, a planted site looks like draws from the PWM: its
    # consensus agreement far above a random window's (1/4 per base)
    cons = pwm.argmax(-1)
    agree = torch.stack([(_site(split, int(i), 0, L) == cons).float().mean() for i in pos])
    assert agree.mean() > 0.7
    # the scanner with the true PWM finds the sites: best window = the planted start
    scores = pwm_scan(split.one_hot[pos], pwm)                     # (P, W, 2)
    best = scores.flatten(1).argmax(-1)
    hit_start, hit_strand = best // 2, torch.where(best % 2 == 0, 1, -1)
    assert (hit_start == split.starts[pos, 0]).float().mean() > 0.9
    assert (hit_strand == strands).float().mean() > 0.9
    # the other factor's sites never overlap the first's
    both = (split.starts >= 0).all(-1)
    assert not (split.site_mask(0) & split.site_mask(1))[both].any()


def test_order_labels_and_splits(presence):
    task = planted_task(("MA0139.2", "MA0080.7"), rule="order", n_train=200, n_val=50,
                        n_test=50, length=80, min_gap=20, flank=10, seed=0)
    for split in (task.train, task.val, task.test):
        assert (split.starts >= 10).all() and (split.starts + 15 <= 70).all()
        assert ((split.starts[:, 0] - split.starts[:, 1]).abs() >= 15 + 20).all()
        assert torch.equal((split.starts[:, 0] < split.starts[:, 1]).long(), split.labels)
    rows = [{tuple(r) for r in s.ids.tolist()} for s in (task.train, task.val, task.test)]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    again = planted_task(n_train=400, n_val=100, n_test=200, length=80, seed=1)
    assert torch.equal(again.test.ids, presence.test.ids)
    with pytest.raises(ValueError, match="rule"):
        planted_task(rule="spacing")
    with pytest.raises(ValueError, match="length"):
        planted_task(rule="order", length=60)
    with pytest.raises(ValueError, match="n_val"):
        planted_task(n_val=0)


def test_pwm_scan_against_a_loop():
    pwm = jaspar_matrix("MA0035.5").pwm()                          # GATA1, L = 7
    ids = torch.randint(0, 4, (2, 20), generator=torch.Generator().manual_seed(3))
    got = pwm_scan(one_hot(ids), pwm)
    p = (pwm + 1e-3) / (pwm + 1e-3).sum(-1, keepdim=True)
    for b in range(2):
        for t in range(14):
            fwd = sum(torch.log(p[i, ids[b, t + i]] / 0.25) for i in range(7))
            rc = reverse_complement(ids[b, t:t + 7])
            rev = sum(torch.log(p[i, rc[i]] / 0.25) for i in range(7))
            torch.testing.assert_close(got[b, t].double(), torch.stack([fwd, rev]).double(),
                                       rtol=1e-5, atol=1e-4)


def test_in_silico_mutagenesis_against_a_loop():
    torch.manual_seed(0)
    model = MotifCNN(MotifCNNConfig(widths=(6,), kernel_size=5)).eval()
    x = one_hot(torch.randint(0, 4, (2, 12), generator=torch.Generator().manual_seed(1)))
    got = in_silico_mutagenesis(model, x)
    with torch.no_grad():
        for b in range(2):
            for t in range(12):
                for c in range(4):
                    v = x[b:b + 1].clone()
                    v[0, t] = torch.eye(4)[c]
                    torch.testing.assert_close(got[b, t, c], (model(v) - model(x[b:b + 1]))[0])
    assert (got[x.bool()] == 0).all()
    assert torch.equal(x, one_hot(x.argmax(-1)))                   # input not mutated


def test_aligned_pwm_recovers_a_planted_motif_on_both_strands():
    g = torch.Generator().manual_seed(0)
    motif = encode("GGACTTTCAC")
    ids = torch.randint(0, 4, (60, 50), generator=g)
    centres = torch.randint(15, 35, (60,), generator=g)
    for b in range(60):
        site = motif if b % 2 else reverse_complement(motif)
        start = int(centres[b]) - 5 + int(torch.randint(-2, 3, (1,), generator=g))
        ids[b, start:start + 10] = site
    found = aligned_pwm(ids, centres, 16, shift=3)
    assert found.shape == (16, 4)
    truth = one_hot(motif[None])[0].double()
    r, offset, strand = compare_pwms(found, truth)
    assert r > 0.95
    found_site = decode(found[offset:offset + 10].argmax(-1))
    assert found_site == (decode(motif) if strand == 1 else decode(reverse_complement(motif)))
    # windows at random places recover nothing like it
    noise = aligned_pwm(ids, torch.randint(8, 42, (60,), generator=g), 16, shift=3)
    assert compare_pwms(noise, truth)[0] < 0.6
    with pytest.raises(ValueError, match="no longer"):
        compare_pwms(truth, found)
