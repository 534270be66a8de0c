"""attnlab.data.vqa and attnlab.models.vqa: questions, splits, balance, cross-attention, errors."""

from __future__ import annotations

import pytest
import torch

from attnlab.data.vqa import (
    Question,
    WordVocab,
    all_questions,
    question_prior_accuracy,
    vqa_task,
)
from attnlab.models import count_parameters
from attnlab.models.vqa import (
    CrossAttentionVQA,
    FusionVQA,
    QuestionOnlyVQA,
    VQAConfig,
    masked_mean,
)


@pytest.fixture(scope="module")
def small_task():
    return vqa_task(per_answer_train=20, per_answer_test=5)


def test_rules_on_every_digit():
    digits = torch.arange(10)
    assert Question("even").answer(digits).tolist() == [1, 0] * 5
    assert Question("odd").answer(digits).tolist() == [0, 1] * 5
    assert Question("larger", 4).answer(digits).tolist() == [0] * 5 + [1] * 5
    assert Question("smaller", 3).answer(digits).tolist() == [1, 1, 1] + [0] * 7
    assert Question("is", 7).answer(digits).tolist() == [0] * 7 + [1, 0, 0]
    texts = [q.text for q in all_questions()]
    assert len(texts) == len(set(texts)) == 30
    assert "is it larger than 8" in texts and "is it smaller than 1" in texts
    assert "is it larger than 9" not in texts  # never yes: it would make a useless question


def test_question_errors():
    with pytest.raises(ValueError, match="kind"):
        Question("bigger", 3)
    with pytest.raises(ValueError, match="number"):
        Question("larger", 9)
    with pytest.raises(ValueError, match="takes no number"):
        Question("even", 2)


def test_vocab_round_trip_and_errors():
    vocab = WordVocab(["is", "it", "a", "3"])
    ids = vocab.encode_batch(["is it a 3", "is it"], length=5)
    assert ids.tolist() == [[1, 2, 3, 4, 0], [1, 2, 0, 0, 0]]
    assert vocab.decode(ids[1]) == "is it"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("is it a 4")
    with pytest.raises(ValueError, match="repeated"):
        WordVocab(["is", "is"])
    with pytest.raises(ValueError, match="length"):
        vocab.encode_batch(["is it a 3"], length=2)


def test_splits_are_disjoint_by_image_balanced_and_answers_follow_the_rules(small_task):
    t = small_task
    assert not set(t.train.digits.index.tolist()) & set(t.test.digits.index.tolist())
    for split, n in ((t.train, 20), (t.test, 5)):
        assert len(split) == 30 * 2 * n
        for qid, q in enumerate(t.questions):
            sel = split.question_ids == qid
            assert int(sel.sum()) == 2 * n
            assert int(split.answers[sel].sum()) == n  # as many yes as no
            torch.testing.assert_close(split.answers[sel], q.answer(split.labels[sel]))
            assert len(set(split.image_rows[sel].tolist())) == 2 * n  # distinct images
            assert t.vocab.decode(split.tokens[sel][0]) == q.text
    images, tokens, answers = t.test.batch(torch.tensor([0, 7]))
    assert images.shape == (2, 8, 8) and tokens.shape == (2, 5) and answers.shape == (2,)


def test_task_is_deterministic_and_the_largest_balanced_set_is_used():
    a, b = vqa_task(20, 5, seed=3), vqa_task(20, 5, seed=3)
    assert torch.equal(a.train.image_rows, b.train.image_rows)
    assert torch.equal(a.test.answers, b.test.answers)
    assert not torch.equal(a.train.image_rows, vqa_task(20, 5, seed=4).train.image_rows)
    full = vqa_task(per_answer_train=None, per_answer_test=5)
    even = full.train.question_ids == 0
    n_even = int((full.train.digits.labels % 2 == 0).sum())
    assert int(even.sum()) == 2 * min(n_even, len(full.train.digits) - n_even)
    with pytest.raises(ValueError, match="per_answer"):
        vqa_task(per_answer_train=500)
    with pytest.raises(ValueError, match="positive integer"):
        vqa_task(per_answer_test=0)


def test_question_prior_accuracy_on_hand_made_and_unbalanced_data(small_task):
    t = small_task
    assert question_prior_accuracy(t.train, t.test) == 0.5
    natural = vqa_task(20, 5, balanced=False)
    prior = question_prior_accuracy(natural.train, natural.test)
    assert 0.65 < prior < 0.9
    # a naive reference: count by hand
    right = 0
    for qid in range(30):
        seen = natural.train.answers[natural.train.question_ids == qid]
        majority = 1 if 2 * int(seen.sum()) >= len(seen) else 0
        right += int((natural.test.answers[natural.test.question_ids == qid] == majority).sum())
    assert prior == right / len(natural.test)


def test_masked_mean():
    x = torch.arange(12.0).reshape(2, 3, 2)
    keep = torch.tensor([[True, False, True], [False, False, False]])
    torch.testing.assert_close(masked_mean(x, keep), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="bool"):
        masked_mean(x, keep.float())


def _batch(B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.tensor([[1, 2, 3, 0, 0], [1, 2, 5, 7, 10], [1, 2, 8, 11, 0]])[:B]
    return torch.rand(B, 8, 8, generator=g), tokens


def test_cross_attention_weights_match_a_reference():
    torch.manual_seed(0)
    model = CrossAttentionVQA(VQAConfig(cross_layers=2)).eval()
    images, tokens = _batch()
    logits, w = model(images, tokens, need_weights=True)
    assert logits.shape == (3, 2) and w.shape == (3, 2, 4, 5, 16)  # (B, L, H, T, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 4, 5))
    torch.testing.assert_close(model(images, tokens), logits)
    # the first block's weights from nn.MultiheadAttention with the same projections
    block = model.cross_blocks[0]
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(block.cross_attn.in_proj.weight)
        ref.in_proj_bias.copy_(block.cross_attn.in_proj.bias)
    z = block.norm_context(model.encode_image(images))
    x, _ = model.encode_question(tokens)
    _, expected = ref(block.norm1(x), z, z, average_attn_weights=False)
    torch.testing.assert_close(w[:, 0], expected)


def test_padding_does_not_change_the_answer_and_models_are_deterministic():
    images, tokens = _batch()
    for cls in (CrossAttentionVQA, FusionVQA, QuestionOnlyVQA):
        torch.manual_seed(0)
        a = cls(VQAConfig()).eval()
        torch.manual_seed(0)
        b = cls(VQAConfig()).eval()
        assert torch.equal(a(images, tokens), b(images, tokens))
        short = tokens[:1, :3]  # "is it even" without its padding
        torch.testing.assert_close(a(images[:1], short), a(images[:1], tokens[:1]))


def test_question_only_ignores_the_image_and_the_others_do_not():
    images, tokens = _batch()
    other = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(9))
    torch.manual_seed(0)
    blind = QuestionOnlyVQA(VQAConfig()).eval()
    assert torch.equal(blind(images, tokens), blind(other, tokens))
    for cls in (CrossAttentionVQA, FusionVQA):
        torch.manual_seed(0)
        model = cls(VQAConfig()).eval()
        assert not torch.allclose(model(images, tokens), model(other, tokens))


def test_sizes_and_errors():
    config = VQAConfig()
    assert config.num_patches == 16
    cross, fusion = CrossAttentionVQA(config), FusionVQA(config)
    assert abs(count_parameters(fusion) / count_parameters(cross) - 1) < 0.01
    images, tokens = _batch()
    with pytest.raises(ValueError, match="images must be"):
        cross(images[:, :4], tokens)
    with pytest.raises(ValueError, match="tokens must be"):
        cross(images, torch.zeros(3, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="batch size"):
        cross(images[:2], tokens)
    with pytest.raises(ValueError, match="multiple"):
        VQAConfig(patch_size=3)
    with pytest.raises(ValueError, match="context_mask"):
        cross.cross_blocks[0](torch.randn(2, 5, 32), torch.randn(2, 16, 32),
                              context_mask=torch.ones(2, 5, dtype=torch.bool))


def test_context_mask_hides_keys():
    torch.manual_seed(0)
    block = CrossAttentionVQA(VQAConfig()).cross_blocks[0]
    x, ctx = torch.randn(2, 5, 32), torch.randn(2, 16, 32)
    keep = torch.ones(2, 16, dtype=torch.bool)
    keep[:, 8:] = False
    out, w = block(x, ctx, context_mask=keep, need_weights=True)
    assert torch.all(w[..., 8:] == 0)
    changed = ctx.clone()
    changed[:, 8:] = 100.0  # what is hidden cannot matter
    torch.testing.assert_close(block(x, changed, context_mask=keep), out)
