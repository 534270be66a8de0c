"""attnlab.data.vqa_scenes: rules on hand-made scenes, presuppositions, balance, splits, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from attnlab.data.vqa import question_prior_accuracy
from attnlab.data.vqa_scenes import (
    PLACES,
    SCENE_KINDS,
    SceneQuestion,
    compose_scenes,
    scene_questions,
    scene_vocab,
    scene_vqa_task,
)
from attnlab.models.vqa import CrossAttentionVQA, FusionVQA, VQAConfig


@pytest.fixture(scope="module")
def small_task():
    return scene_vqa_task(n_train=2000, n_test=500, seed=0)


def _slow_answer(q: SceneQuestion, scene: list[int]) -> tuple[bool, int]:
    """The rule written out slot by slot: (asked, answer), slots row-major in a 2x2 grid."""
    where = {d: [s for s in range(4) if scene[s] == d] for d in range(10)}
    a = where[q.digit]
    if q.kind == "there":
        return True, int(len(a) > 0)
    if q.kind == "more":
        return len(a) >= 1, int(len(a) >= 2)
    if q.kind == "place":
        return len(a) >= 1, int(scene[q.other] == q.digit)
    b = where[q.other]
    if len(a) != 1 or len(b) != 1:
        return False, 0
    (sa,), (sb,) = a, b
    if q.kind == "left":
        return True, int(sa % 2 == 0 and sb % 2 == 1)
    return True, int(sa // 2 == 0 and sb // 2 == 1)


def test_rules_match_a_slot_by_slot_reference_on_every_scene():
    scenes = torch.tensor(list(itertools.product(range(4), repeat=4)))  # all 256 scenes
    for q in scene_questions(4):
        expected = [_slow_answer(q, s) for s in scenes.tolist()]
        assert q.asked(scenes).tolist() == [e[0] for e in expected], q.text
        assert q.answer(scenes).tolist() == [e[1] for e in expected], q.text


def test_hand_made_scenes():
    scene = torch.tensor([[3, 1, 0, 2]])  # 3 1 / 0 2
    assert SceneQuestion("place", 3, 0).answer(scene).item() == 1
    assert SceneQuestion("place", 3, 3).answer(scene).item() == 0
    assert SceneQuestion("left", 3, 1).answer(scene).item() == 1
    assert SceneQuestion("left", 1, 3).answer(scene).item() == 0
    assert SceneQuestion("left", 0, 1).answer(scene).item() == 1  # 0 bottom left, 1 top right
    assert SceneQuestion("above", 3, 0).answer(scene).item() == 1
    assert SceneQuestion("above", 3, 1).answer(scene).item() == 0  # same row: not above
    assert SceneQuestion("more", 3).answer(torch.tensor([[3, 0, 3, 1]])).item() == 1
    assert SceneQuestion("there", 2).answer(torch.tensor([[3, 0, 3, 1]])).item() == 0
    assert SceneQuestion("place", 1, 2).text == f"is the {PLACES[2]} a 1"


def test_questions_vocab_and_texts():
    qs = scene_questions(4)
    assert len(qs) == 2 * 4 + 4 * 4 + 2 * 4 * 3
    assert [q.kind for q in qs] == sorted((q.kind for q in qs), key=SCENE_KINDS.index)
    texts = [q.text for q in qs]
    assert len(set(texts)) == len(texts)
    vocab = scene_vocab(4)
    ids = vocab.encode_batch(texts, length=7)
    assert [vocab.decode(row) for row in ids] == texts
    assert len(scene_questions(10)) == 20 + 40 + 180


def test_question_and_argument_errors():
    with pytest.raises(ValueError, match="kind"):
        SceneQuestion("below", 1, 2)
    with pytest.raises(ValueError, match="place in 0..3"):
        SceneQuestion("place", 1, 4)
    with pytest.raises(ValueError, match="other than 2"):
        SceneQuestion("left", 2, 2)
    with pytest.raises(ValueError, match="takes no other"):
        SceneQuestion("there", 2, 1)
    with pytest.raises(ValueError, match="digit"):
        SceneQuestion("there", 10)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        SceneQuestion("there", 1).answer(torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="digits"):
        scene_questions(1)
    with pytest.raises(ValueError, match="n_test"):
        scene_vqa_task(n_train=10, n_test=0)
    with pytest.raises(ValueError, match=r"\(N, 4, h, w\)"):
        compose_scenes(torch.zeros(2, 3, 8, 8))


def test_compose_puts_each_digit_in_its_quarter():
    tiles = torch.rand(5, 4, 8, 8)
    scenes = compose_scenes(tiles)
    assert scenes.shape == (5, 16, 16)
    for slot in range(4):
        r, c = divmod(slot, 2)
        assert torch.equal(scenes[:, 8 * r:8 * r + 8, 8 * c:8 * c + 8], tiles[:, slot])


def test_task_is_balanced_disjoint_and_answers_follow_the_images(small_task):
    task = small_task
    train_rows = set(task.train.digits.index.tolist())
    assert not train_rows & set(task.test.digits.index.tolist())
    for split in (task.train, task.test):
        kinds = task.kinds(split)
        counts = [int((kinds == k).sum()) for k in SCENE_KINDS]
        assert min(counts) > 0.8 * len(split) / 5  # every kind about equally often
        for i, q in enumerate(task.questions):
            sel = split.question_ids == i
            yes, n = int(split.answers[sel].sum()), int(sel.sum())
            assert abs(2 * yes - n) <= 1, q.text  # yes == no per question (+-1)
            assert q.asked(split.scenes[sel]).all(), q.text
            assert torch.equal(split.answers[sel], q.answer(split.scenes[sel]))
        assert torch.equal(split.tokens, task.vocab.encode_batch(
            [task.questions[i].text for i in split.question_ids.tolist()], length=7))
    # every quarter of a scene is an image of its slot's digit from the right split
    split = task.test
    for k in range(0, len(split), 50):
        for slot in range(4):
            r, c = divmod(slot, 2)
            tile = split.images[k, 8 * r:8 * r + 8, 8 * c:8 * c + 8]
            same = (split.digits.images == tile).flatten(1).all(1)
            assert same.any()
            assert int(split.scenes[k, slot]) in split.digits.labels[same].tolist()


def test_task_is_deterministic_and_natural_answers_follow_the_scenes(small_task):
    again = scene_vqa_task(n_train=2000, n_test=500, seed=0)
    assert torch.equal(again.train.images, small_task.train.images)
    other = scene_vqa_task(n_train=2000, n_test=500, seed=1)
    assert not torch.equal(other.train.scenes, small_task.train.scenes)
    assert abs(question_prior_accuracy(small_task.train, small_task.test) - 0.5) < 0.02
    natural = scene_vqa_task(n_train=2000, n_test=500, balanced=False)
    assert question_prior_accuracy(natural.train, natural.test) > 0.6
    for i, q in enumerate(natural.questions):
        assert q.asked(natural.test.scenes[natural.test.question_ids == i]).all()


def test_models_take_scenes(small_task):
    task = small_task
    config = VQAConfig(vocab_size=task.vocab.vocab_size, max_question_len=7,
                       image_size=16, patch_size=8)
    images, tokens = task.test.images[:3], task.test.tokens[:3]
    logits, w = CrossAttentionVQA(config)(images, tokens, need_weights=True)
    assert logits.shape == (3, 2) and w.shape == (3, 1, 4, 7, 4)
    assert FusionVQA(config)(images, tokens).shape == (3, 2)


def test_what_only_answers_knows_counts_not_places(small_task):
    from attnlab.data.vqa_scenes import what_only_answers

    task = small_task
    right = (what_only_answers(task, task.test) == task.test.answers).numpy()
    kinds = task.kinds(task.test)
    assert right[kinds == "there"].mean() == 1.0 and right[kinds == "more"].mean() == 1.0
    assert abs(right[kinds == "left"].mean() - 0.5) < 0.1
    # place, by hand for 4 digits: answer yes iff the scene holds two or more k's; that is
    # right on 37 of the 64 yes-scenes and 27 of the 37 no-scenes, 0.5 (37/64 + 27/37) = 0.654
    place = np.flatnonzero(kinds == "place")
    q = [task.questions[int(i)] for i in task.test.question_ids[place]]
    counts = torch.stack([(task.test.scenes[int(i)] == qq.digit).sum() for i, qq in
                          zip(place, q)])
    assert torch.equal(what_only_answers(task, task.test)[place], (counts >= 2).long())
    assert 0.6 < right[kinds == "place"].mean() < 0.71
