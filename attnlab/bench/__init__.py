r"""Benchmarks: time and peak memory of attention implementations against the sequence length.

``attnlab bench`` (or ``python -m attnlab.bench``) runs every implementation
side by side, for sequence lengths 256 ... 16 384, for the forward pass and for
forward + backward, and writes ``<tag>.json``, ``<tag>_time.png`` and
``<tag>_memory.png`` to ``benchmarks/results/``; it prints a table and the
ratios the book's targets are stated in.

Each case (one method, one length, one pass) runs in a fresh Python process,
so that one case's memory cannot leak into the next one's measurement:

* **Peak memory** on the CPU is the resident-set high-water mark of that
  process *minus* its resident set just after the inputs were created (the
  libraries are warmed up on tiny inputs before that, so their one-off
  buffers are not counted). The high-water mark is reset at that point where
  Linux allows it (``/proc/self/clear_refs``), else the process's lifetime
  peak is used. On CUDA it is ``torch.cuda.max_memory_allocated`` minus the
  memory allocated after creating the inputs.
* **Time** is the fastest of 3 to 5 timed calls (the median is recorded too),
  after one untimed call (the one whose memory is measured), with
  ``torch.cuda.synchronize`` on a GPU.

Methods (``q, k, v`` are (B, H, T, D), self-attention, no mask):

==================  =========================================================
``naive``           :func:`attnlab.functional.naive_attention`, the (T, T) matrix
``functional``      :func:`attnlab.functional.attention` (no weights)
``chunked``         :func:`attnlab.efficient.chunked_attention`
``sdpa``            ``F.scaled_dot_product_attention``, PyTorch's own choice
``sdpa-<backend>``  SDPA forced to one backend (flash, efficient, cudnn, math)
``triton``          :func:`attnlab.triton_attention.triton_attention` (CUDA)
``linear``          :func:`attnlab.efficient.linear_attention` (approximate)
``linformer``       :func:`attnlab.efficient.linformer_attention`, r = 256
``local``           :func:`attnlab.efficient.local_attention`, window 128
``mha``             :class:`attnlab.layers.MultiHeadAttention`, x (B, T, C)
``torch-mha``       ``nn.MultiheadAttention`` with the same weights
==================  =========================================================

The package's modules, one job each: ``attnlab.bench.cases`` (the
methods and their inputs), ``attnlab.bench.measure`` (one case, in its
own process), ``attnlab.bench.suite`` (every case), ``attnlab.bench.report``
(schema, ratios, table, plots) and ``attnlab.bench.cli``.

Tests check that what is benchmarked is correct, never how fast it is.
"""

from attnlab.bench.cases import (
    DEFAULT_LENGTHS,
    METHODS,
    PASSES,
    BenchConfig,
    default_methods,
    make_case,
)
from attnlab.bench.cli import add_arguments, main, run_from_args
from attnlab.bench.measure import measure_case, peak_rss_during, run_case
from attnlab.bench.report import (
    SCHEMA_VERSION,
    format_table,
    plot_results,
    summarise,
    validate_results,
)
from attnlab.bench.suite import run_suite

__all__ = [
    "BenchConfig",
    "DEFAULT_LENGTHS",
    "METHODS",
    "PASSES",
    "SCHEMA_VERSION",
    "default_methods",
    "make_case",
    "run_case",
    "measure_case",
    "peak_rss_during",
    "run_suite",
    "summarise",
    "validate_results",
    "format_table",
    "plot_results",
    "add_arguments",
    "run_from_args",
    "main",
]
