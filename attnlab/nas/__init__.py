r"""Neural architecture search over small attention models: a space, two searches, a cost model.

An *architecture* is one choice per axis of a :class:`SearchSpace`: the number of heads H, the
depth (blocks), the width C, the attention type (``"softmax"``, ``"linear"`` -- the kernel
feature map of :func:`attnlab.efficient.linear_attention` -- or ``"local"``, a sliding window
as in :func:`attnlab.efficient.local_attention`) and the positional encoding (``"none"``,
``"sinusoidal"``, ``"learned"`` or ``"rotary"``, from :mod:`attnlab.layers`).

:func:`build_model` turns an architecture into a :class:`CandidateModel`, an encoder that
labels every position of a sequence (made of :class:`attnlab.layers.TransformerBlock` with its
attention swapped for the chosen type). :func:`train_and_evaluate` trains one for a short, fixed
budget on a :class:`TokenTask` and measures its validation accuracy; :func:`random_search`,
:func:`regularized_evolution` (aging evolution, Real et al. 2019) and :func:`local_search`
(hill climbing over designs one decision apart, :meth:`SearchSpace.neighbours`) spend the same
number of such evaluations. :func:`pareto_front` keeps the designs that no other design beats
on every objective, and :func:`parameter_count` / :func:`flops_per_example` are the
deterministic cost model: a design's cost is computed from its hyper-parameters, never timed.

Matrix-product FLOPs of one forward pass over T positions (2 per multiply-add), per block:

.. math::

    \underbrace{8 T C^2}_{Q,K,V,O} + \underbrace{4 T C F}_{\text{feed-forward}} +
    \begin{cases} 4 T^2 C & \text{softmax} \\ 4 P C & \text{local, } P \text{ allowed pairs} \\
    4 T C D & \text{linear} \end{cases}

with F the feed-forward width and D = C / H; plus ``2 T C n_out`` for the output layer.

The package, one module per job: :mod:`attnlab.nas.space` (the space),
:mod:`attnlab.nas.candidate` (the model and its cost model), :mod:`attnlab.nas.evaluate` (the task
and one evaluation), :mod:`attnlab.nas.search` (the searches, the Pareto front, latency); every
name is importable from :mod:`attnlab.nas`.
"""

from attnlab.nas.candidate import (
    CandidateModel,
    SwappableAttention,
    build_model,
    flops_per_example,
    parameter_count,
)
from attnlab.nas.evaluate import (
    CachedEvaluator,
    EvalConfig,
    Evaluation,
    TokenTask,
    reversal_token_task,
    token_accuracy,
    train_and_evaluate,
)
from attnlab.nas.search import (
    best_so_far,
    dominates,
    local_search,
    measure_latency,
    pareto_front,
    random_search,
    regularized_evolution,
)
from attnlab.nas.space import ATTENTION_TYPES, POSITIONAL_ENCODINGS, Architecture, SearchSpace

__all__ = [
    "ATTENTION_TYPES",
    "POSITIONAL_ENCODINGS",
    "Architecture",
    "SearchSpace",
    "SwappableAttention",
    "CandidateModel",
    "build_model",
    "parameter_count",
    "flops_per_example",
    "TokenTask",
    "reversal_token_task",
    "EvalConfig",
    "Evaluation",
    "token_accuracy",
    "train_and_evaluate",
    "CachedEvaluator",
    "random_search",
    "regularized_evolution",
    "local_search",
    "best_so_far",
    "dominates",
    "pareto_front",
    "measure_latency",
]
