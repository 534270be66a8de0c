"""attnlab: the code behind *Attention Lab*, an executable textbook on attention.

Every chapter of the book imports this package; every function in it is tested
against PyTorch or a naive reference.

Shape glossary (the same letters everywhere in the book and the code):

====  ==========================================
B     batch size
T     query length (target positions)
S     key / value length (source positions)
H     number of heads
D     head dimension (query/key width)
C     model width, ``C = H * D``
V     vocabulary size
====  ==========================================

Internally tensors are laid out ``(B, H, T, D)``; every public boundary is
batch-first. Boolean masks mean ``True`` = *may attend*.

Modules:

- :mod:`attnlab.functional` -- softmax, scores, attention (pure functions)
- :mod:`attnlab.masks` -- every attention mask: causal, lengths, padding, window, leave-one-out,
  top-k
- :mod:`attnlab.pooling` -- attention pooling as kernel regression
- :mod:`attnlab.layers` -- additive and multi-head attention, KV caches, positions, Transformer
  blocks, attention pooling, patches
- :mod:`attnlab.models` -- seq2seq, Transformer and GPT, with typed configs
- :mod:`attnlab.decoding` -- top-k and nucleus (top-p) filters, beam search
- :mod:`attnlab.data` -- synthetic tasks and tokenizers
- :mod:`attnlab.train` -- the training loop, checkpoints
- :mod:`attnlab.efficient` -- chunked (memory-linear) exact attention and approximations
- :mod:`attnlab.analysis` -- attention rollout and other analyses of trained models
- :mod:`attnlab.attribution` -- gradient x input, occlusion, rank correlation
- :mod:`attnlab.metrics` -- ranking metrics (HR@k, NDCG@k)
- :mod:`attnlab.perf` -- FLOPs, MFU and peak memory
- :mod:`attnlab.distributed` -- DistributedDataParallel training under torchrun
- :mod:`attnlab.grading` -- exercise checks and the grader
- :mod:`attnlab.utils` -- seeding and device selection
- :mod:`attnlab.plot` -- heatmaps, attention grids, learning curves
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
