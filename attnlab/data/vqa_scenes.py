"""Questions about *where*: yes/no questions about four digits arranged in a 2x2 scene.

A scene is a 16x16 image made of four 8x8 digits of :mod:`attnlab.data.digits`,
one in each quarter (slots 0..3: top left, top right, bottom left, bottom
right). The question language has five kinds::

    there   is there a k                 one object, no place
    more    is there more than one k     counting
    place   is the top left a k          one object and a place (4 places)
    left    is the a left of the b       two objects and where they are
    above   is the a above the b         two objects and where they are

Each question is asked only of scenes where it makes sense (its
*presupposition*): "more" and "place" of scenes that hold at least one k,
"left" and "above" of scenes that hold exactly one a and one b. So knowing
which digits are in the scene, without their places, answers only the kinds
"there" and "more"; "place", "left" and "above" need *where*.

- :class:`SceneQuestion` -- one question: its text and its rule;
- :func:`scene_questions`, :func:`scene_vocab` -- the language over digits 0..n-1;
- :func:`compose_scenes` -- four digit images to one scene image;
- :func:`scene_vqa_task` -- a :class:`SceneTask` with train and test scenes
  built from the disjoint digit splits of :func:`attnlab.data.digits.digits_task`,
  so that **no test digit image appears in a training scene**. With
  ``balanced=True`` every kind is asked equally often and every question is
  answered yes as often as no.

:func:`attnlab.data.vqa.question_prior_accuracy` works on these splits too;
:func:`what_only_answers` is the counting baseline of a model that knows
which digits a scene holds, and how many of each, but not where they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnlab._validate import shape_str
from attnlab.data.digits import DigitsSplit, digits_task
from attnlab.data.reviews import WordVocab

__all__ = [
    "SCENE_KINDS",
    "PLACES",
    "SceneQuestion",
    "scene_questions",
    "scene_vocab",
    "compose_scenes",
    "SceneSplit",
    "SceneTask",
    "scene_vqa_task",
    "what_only_answers",
]

SCENE_KINDS = ("there", "more", "place", "left", "above")  #: the five kinds of question
#: the four slots of a scene, 0..3 in row-major order
PLACES = ("top left", "top right", "bottom left", "bottom right")
MAX_QUESTION_LEN = 7  # "is the 3 left of the 1"


@dataclass(frozen=True)
class SceneQuestion:
    """One question about a scene: a kind, a digit and, for three kinds, a second number.

    ``other`` is the place (0..3, see :data:`PLACES`) of a "place" question and
    the second digit b of "left" and "above"; None for "there" and "more".

    Example:
        >>> q = SceneQuestion("left", 3, 1)
        >>> scenes = torch.tensor([[3, 1, 0, 0], [1, 3, 0, 0], [3, 0, 1, 0], [3, 3, 1, 0]])
        >>> q.text, q.asked(scenes).tolist(), q.answer(scenes).tolist()
        ('is the 3 left of the 1', [True, True, True, False], [1, 0, 0, 0])
    """

    kind: str  # one of SCENE_KINDS
    digit: int  # k, or a of "is the a left of the b"
    other: int | None = None  # the place of "place", b of "left" / "above"

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"kind must be one of {SCENE_KINDS}, got {self.kind!r}")
        if not (isinstance(self.digit, int) and 0 <= self.digit <= 9):
            raise ValueError(f"digit must be an int in 0..9, got {self.digit!r}")
        if self.kind in ("there", "more"):
            if self.other is not None:
                raise ValueError(f"a {self.kind!r} question takes no other, got {self.other!r}")
        elif self.kind == "place":
            if self.other not in range(4):
                raise ValueError(f"a 'place' question needs a place in 0..3, got {self.other!r}")
        elif self.other not in range(10) or self.other == self.digit:
            raise ValueError(f"a {self.kind!r} question needs a second digit in 0..9 other "
                             f"than {self.digit}, got {self.other!r}")

    @property
    def text(self) -> str:
        """The question as words, e.g. ``"is the top left a 3"``."""
        k, o = self.digit, self.other
        return {"there": f"is there a {k}", "more": f"is there more than one {k}",
                "place": f"is the {PLACES[o or 0]} a {k}",
                "left": f"is the {k} left of the {o}",
                "above": f"is the {k} above the {o}"}[self.kind]

    def asked(self, scenes: torch.Tensor) -> torch.Tensor:
        """Whether the question makes sense of each scene (its presupposition holds).

        Shape:
            scenes (N, 4) digit labels of slots 0..3 -> (N,) bool.
        """
        _check_scenes(scenes)
        count = (scenes == self.digit).sum(1)  # (N,)
        if self.kind == "there":
            return torch.ones(len(scenes), dtype=torch.bool)
        if self.kind in ("more", "place"):
            return count >= 1
        return (count == 1) & ((scenes == self.other).sum(1) == 1)

    def answer(self, scenes: torch.Tensor) -> torch.Tensor:
        """The answers (1 = yes, 0 = no, int64) for scenes (N, 4); 0 where not :meth:`asked`."""
        _check_scenes(scenes)
        is_a = scenes == self.digit  # (N, 4)
        if self.kind == "there":
            rule = is_a.any(1)
        elif self.kind == "more":
            rule = is_a.sum(1) >= 2
        elif self.kind == "place":
            rule = is_a[:, self.other]
        else:
            slot_a, slot_b = is_a.long().argmax(1), (scenes == self.other).long().argmax(1)
            if self.kind == "left":  # column = slot % 2
                rule = slot_a % 2 < slot_b % 2
            else:  # row = slot // 2
                rule = slot_a // 2 < slot_b // 2
        return (rule & self.asked(scenes)).long()


def _check_scenes(scenes: torch.Tensor) -> None:
    if scenes.dim() != 2 or scenes.shape[1] != 4 or scenes.is_floating_point():
        raise ValueError(f"scenes must be integer digit labels (N, 4), got {shape_str(scenes)}")


def _check_digits(digits: int) -> None:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 2 <= digits <= 10:
        raise ValueError(f"digits must be an int in 2..10 (scenes use digits 0..digits-1), "
                         f"got {digits!r}")


def scene_questions(digits: int = 4) -> list[SceneQuestion]:
    """Every question about scenes of digits 0..digits-1, in the order of :data:`SCENE_KINDS`.

    There are ``2 n + 4 n + 2 n (n - 1)`` of them for n = ``digits``.

    Example:
        >>> qs = scene_questions(4)
        >>> len(qs), qs[0].text, qs[8].text, qs[-1].text
        (48, 'is there a 0', 'is the top left a 0', 'is the 3 above the 2')
    """
    _check_digits(digits)
    out = [SceneQuestion("there", k) for k in range(digits)]
    out += [SceneQuestion("more", k) for k in range(digits)]
    out += [SceneQuestion("place", k, p) for p in range(4) for k in range(digits)]
    for kind in ("left", "above"):
        out += [SceneQuestion(kind, a, b) for a in range(digits) for b in range(digits)
                if a != b]
    return out


def scene_vocab(digits: int = 4) -> WordVocab:
    """The words of the scene questions (V = 14 + digits with ``<pad>``).

    Example:
        >>> vocab = scene_vocab(4)
        >>> vocab.vocab_size, vocab.encode("is the top left a 3")
        (18, [1, 7, 8, 10, 3, 17])
    """
    _check_digits(digits)
    return WordVocab(["is", "there", "a", "more", "than", "one", "the", "top", "bottom",
                      "left", "right", "of", "above", *[str(d) for d in range(digits)]])


def compose_scenes(images: torch.Tensor) -> torch.Tensor:
    """Four (h, w) images per scene, tiled into a (2h, 2w) image, slots in row-major order.

    Shape:
        images (N, 4, h, w) -> (N, 2h, 2w).

    Example:
        >>> tiles = torch.arange(4.0)[None, :, None, None].expand(1, 4, 2, 2)
        >>> compose_scenes(tiles)[0]
        tensor([[0., 0., 1., 1.],
                [0., 0., 1., 1.],
                [2., 2., 3., 3.],
                [2., 2., 3., 3.]])
    """
    if images.dim() != 4 or images.shape[1] != 4:
        raise ValueError(f"images must be (N, 4, h, w), got {shape_str(images)}")
    n, _, h, w = images.shape
    # (N, row, col, h, w) -> (N, row, h, col, w)
    return images.reshape(n, 2, 2, h, w).permute(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * w)


@dataclass(frozen=True)
class SceneSplit:
    """Questions about scenes built from the images of one digits split.

    Example k asks question ``question_ids[k]`` (its words: ``tokens[k]``)
    about scene ``images[k]``, whose slots show digits ``scenes[k]``.

    Shape:
        images (K, 16, 16); scenes (K, 4); question_ids, answers (K,) int64;
        tokens (K, T) int64, padded with 0.
    """

    digits: DigitsSplit
    images: torch.Tensor
    scenes: torch.Tensor
    question_ids: torch.Tensor
    tokens: torch.Tensor
    answers: torch.Tensor

    def __post_init__(self) -> None:
        K = self.question_ids.shape[0]
        checks = {"images": (K, 16, 16), "scenes": (K, 4), "answers": (K,)}
        for name, shape in checks.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must be {shape}, got {shape_str(getattr(self, name))}")
        if self.tokens.dim() != 2 or self.tokens.shape[0] != K:
            raise ValueError(f"tokens must be (K, T) with K={K}, got {shape_str(self.tokens)}")

    def __len__(self) -> int:
        return int(self.question_ids.shape[0])


@dataclass(frozen=True)
class SceneTask:
    """Questions about scenes, with disjoint train and test digit images."""

    train: SceneSplit
    test: SceneSplit
    questions: tuple[SceneQuestion, ...]
    vocab: WordVocab

    def kinds(self, split: SceneSplit) -> np.ndarray:
        """The kind of every example of ``split``, (K,) strings."""
        return np.array([self.questions[i].kind for i in split.question_ids.tolist()])


def _ask(split: DigitsSplit, questions: Sequence[SceneQuestion], n: int, balanced: bool,
         digits: int, rng: np.random.Generator
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # every possible scene, (digits**4, 4): a draw among them is a uniform random scene
    grids = torch.from_numpy(np.indices((digits,) * 4).reshape(4, -1).T.copy())
    kinds = [k for k in SCENE_KINDS if any(q.kind == k for q in questions)]
    by_kind = {k: [i for i, q in enumerate(questions) if q.kind == k] for k in kinds}
    kind = rng.integers(0, len(kinds), n)  # every kind equally often
    qids = np.array([by_kind[kinds[k]][rng.integers(len(by_kind[kinds[k]]))] for k in kind])
    wanted = np.zeros(n, dtype=np.int64)  # balanced: the answer first, then a scene with it
    rows = np.empty(n, dtype=np.int64)
    for qid in np.unique(qids):
        q = questions[qid]
        mine = np.flatnonzero(qids == qid)
        wanted[mine] = rng.permutation(np.arange(len(mine)) % 2)  # as many yes as no (+-1)
        asked, yes = q.asked(grids).numpy(), q.answer(grids).numpy().astype(bool)
        for answer in (0, 1):
            sel = np.flatnonzero((qids == qid) & ((wanted == answer) | (not balanced)))
            if not len(sel):
                continue
            pool_rows = np.flatnonzero(asked & (yes == answer) if balanced else asked)
            rows[sel] = rng.choice(pool_rows, size=len(sel))
    scenes = grids[torch.from_numpy(rows)]  # (n, 4)
    labels = split.labels.numpy()
    picks = np.empty((n, 4), dtype=np.int64)  # a random image of the right digit per slot
    for d in range(digits):
        where = scenes.numpy() == d
        of_d = np.flatnonzero(labels == d)
        picks[where] = of_d[rng.integers(0, len(of_d), int(where.sum()))]
    images = compose_scenes(split.images[torch.from_numpy(picks)])  # (n, 16, 16)
    question_ids = torch.from_numpy(qids)
    answers = torch.empty(n, dtype=torch.long)
    for qid in np.unique(qids):
        sel = question_ids == int(qid)
        answers[sel] = questions[qid].answer(scenes[sel])
    return images, scenes, question_ids, answers


def scene_vqa_task(n_train: int = 20_000, n_test: int = 4_000, digits: int = 4,
                   balanced: bool = True, test_fraction: float = 0.2, seed: int = 0
                   ) -> SceneTask:
    """Yes/no questions about 2x2 scenes of digits; no test digit image is seen in training.

    The digit images are split by :func:`~attnlab.data.digits.digits_task`
    (stratified, disjoint); training scenes are tiled from training images
    only, test scenes from test images only. Each example draws a kind
    uniformly, then a question of that kind; with ``balanced=True`` it then
    draws the answer (yes or no, equally likely) and a scene, among those the
    question is asked of, that has this answer; with ``balanced=False`` any
    scene the question is asked of, so that the answers follow the scenes
    ("is there more than one 3" is then mostly no).

    Args:
        n_train, n_test: examples in each split.
        digits: scenes use digits 0..digits-1 (2..10); fewer digits, fewer questions.
        balanced: balance the answers of every question.
        test_fraction: the share of each digit held out (as in ``digits_task``).
        seed: seeds the digit split and every draw.

    Shape:
        train: images (n_train, 16, 16), tokens (n_train, 7); test likewise.

    Example:
        >>> task = scene_vqa_task(n_train=400, n_test=100)
        >>> len(task.questions), tuple(task.train.images.shape), tuple(task.test.tokens.shape)
        (48, (400, 16, 16), (100, 7))
        >>> all(bool(q.asked(task.test.scenes[task.test.question_ids == i]).all())
        ...     for i, q in enumerate(task.questions))
        True
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    _check_digits(digits)
    split = digits_task(test_fraction=test_fraction, seed=seed)
    questions = tuple(scene_questions(digits))
    vocab = scene_vocab(digits)
    tokens = vocab.encode_batch([q.text for q in questions], length=MAX_QUESTION_LEN)
    rng = np.random.default_rng([seed, 15, 2])
    out = []
    for digit_split, n in ((split.train, n_train), (split.test, n_test)):
        images, scenes, qids, answers = _ask(digit_split, questions, n, balanced, digits, rng)
        out.append(SceneSplit(digit_split, images, scenes, qids, tokens[qids], answers))
    return SceneTask(out[0], out[1], questions, vocab)


def what_only_answers(task: SceneTask, split: SceneSplit) -> torch.Tensor:
    """The answers of a model that knows *what* a scene holds but not *where*.

    A model that sees only the digit counts of a scene (how many 0s, 1s, ...)
    can do no better, on balanced answers, than to answer yes where counts
    like these are at least as likely among the scenes whose answer is yes as
    among those whose answer is no. This function counts that over every
    possible scene, exactly (no training): on *there* and *more* it is always
    right, on *left* and *above* it is at chance (the counts say nothing of
    the order), and on *place* it is above chance, because a scene with a k
    in the asked place tends to hold more k's.

    Args:
        task: the :class:`SceneTask` (its questions and digits).
        split: the examples to answer (``task.test``, say).

    Shape:
        Returns (K,) int64 answers for the K examples of ``split``.

    Example:
        >>> task = scene_vqa_task(n_train=100, n_test=1000)
        >>> right = (what_only_answers(task, task.test) == task.test.answers).numpy()
        >>> kinds = task.kinds(task.test)
        >>> [round(float(right[kinds == k].mean()), 1) for k in ("there", "more", "left")]
        [1.0, 1.0, 0.5]
    """
    digits = 1 + max(max(q.digit, q.other or 0) if q.kind != "place" else q.digit
                     for q in task.questions)
    grids = torch.from_numpy(np.indices((digits,) * 4).reshape(4, -1).T.copy())  # (G, 4)
    patterns, grid_pattern = torch.unique(torch.nn.functional.one_hot(grids, digits).sum(1),
                                          dim=0, return_inverse=True)  # (P, digits), (G,)
    split_pattern = torch.stack([(split.scenes == d).sum(1) for d in range(digits)], 1)
    out = torch.empty(len(split), dtype=torch.long)
    for qid in torch.unique(split.question_ids).tolist():
        q = task.questions[qid]
        asked, yes = q.asked(grids), q.answer(grids).bool()
        n_yes = torch.bincount(grid_pattern[asked & yes], minlength=len(patterns)).double()
        n_no = torch.bincount(grid_pattern[asked & ~yes], minlength=len(patterns)).double()
        say_yes = n_yes / n_yes.sum() >= n_no / n_no.sum()  # (P,) likelihoods compared
        sel = split.question_ids == qid
        match = (split_pattern[sel][:, None, :] == patterns[None]).all(-1)  # (k, P)
        out[sel] = say_yes[match.long().argmax(1)].long()
    return out
