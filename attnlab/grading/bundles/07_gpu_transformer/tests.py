"""Tests of the exercise set '07_gpu_transformer', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex07-05)
# TESTS
FLOPS = """
def flops_per_token(n_params, n_layer, width, seq_len):
    return 6.0 * n_params + 12.0 * n_layer * width * seq_len
"""
question(
    "q1", points=2, function="flops_per_token", reference=FLOPS,
    public=[case(400_000, 2, 128, 13, note="chapter 6's GPT")],
    hidden=[case(124_000_000, 12, 768, 1024, note="a GPT-2-sized model"),
            case(10_000, 1, 16, 512, note="a tiny model with long sequences")],
    misconceptions=[
        misconception("You counted the forward pass only (2N + 4LCT): training adds the "
                      "backward pass, twice the forward's cost, so 6N + 12LCT",
                      code="def flops_per_token(n_params, n_layer, width, seq_len):\n"
                           "    return 2.0 * n_params + 4.0 * n_layer * width * seq_len"),
        misconception("You left out the attention scores and weighted sums, 12·L·C·T",
                      code="def flops_per_token(n_params, n_layer, width, seq_len):\n"
                           "    return 6.0 * n_params"),
    ],
    rtol=1e-9, atol=0.0,
)

# --- cell 10 (ex07-09)
# TESTS
MFU = """
def mfu(tokens_per_second, flops_per_token, peak_flops):
    return tokens_per_second * flops_per_token / peak_flops
"""
question(
    "q2", points=2, function="mfu", reference=MFU,
    public=[case(1.0e5, 2.4e6, 989.4e12, note="a small model on an H100")],
    hidden=[case(3.0e4, 7.5e8, 312e12, note="a large model on an A100"),
            case(1781.0, 2.4e6, 3.7e10, note="a CPU run")],
    misconceptions=[
        misconception("You returned a percentage: MFU is a fraction between 0 and 1",
                      code="def mfu(tokens_per_second, flops_per_token, peak_flops):\n"
                           "    return 100 * tokens_per_second * flops_per_token / peak_flops"),
        misconception("You divided the wrong way round: MFU is achieved FLOP/s over the peak",
                      code="def mfu(tokens_per_second, flops_per_token, peak_flops):\n"
                           "    return peak_flops / (tokens_per_second * flops_per_token)"),
    ],
    rtol=1e-9, atol=0.0,
)

# --- cell 14 (ex07-13)
# TESTS
AVERAGE = """
import torch
def average_gradients(grads):
    mean = torch.stack(grads).mean(dim=0)
    return [mean.clone() for _ in grads]
"""
g = torch.Generator().manual_seed(7)
question(
    "q3", points=2, function="average_gradients", reference=AVERAGE,
    public=[case([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])], note="two ranks")],
    hidden=[case([torch.randn(3, 4, generator=g) for _ in range(4)], note="four ranks"),
            case([torch.tensor([5.0])], note="a single rank")],
    misconceptions=[
        misconception("DDP averages the gradients: divide the sum by the number of ranks",
                      code="import torch\ndef average_gradients(grads):\n"
                           "    total = torch.stack(grads).sum(dim=0)\n"
                           "    return [total.clone() for _ in grads]"),
        misconception("Each rank kept its own gradient: that is training without all-reduce, "
                      "and the replicas drift apart",
                      code="def average_gradients(grads):\n    return [g.clone() for g in grads]"),
    ],
)

# --- cell 18 (ex07-17)
# TESTS
question(
    "q4", points=1, variable="q4_bf16_eps", expected=torch.finfo(torch.bfloat16).eps,
    rtol=1e-9, atol=0.0,
    misconceptions=[
        misconception("That is float16's epsilon (10 bits of mantissa); bfloat16 keeps "
                      "float32's exponent and only 7 bits of mantissa",
                      value=torch.finfo(torch.float16).eps),
        misconception("That is float32's epsilon (23 bits of mantissa)",
                      value=torch.finfo(torch.float32).eps),
        misconception("2^-8 counts the implicit leading bit as a mantissa bit: bfloat16 stores "
                      "7 bits, so eps = 2^-7", value=2.0 ** -8),
    ],
)

# --- cell 22 (ex07-21)
# TESTS
question(
    "q5", points=1, variable="q5_positions_per_step", expected=64 * (14 - 1),
    misconceptions=[
        misconception("The model reads ids[:, :-1] and predicts ids[:, 1:]: each sequence of "
                      "L tokens gives L - 1 predictions", value=64 * 14),
    ],
)

# --- cell 26 (ex07-25)
# TESTS
def _layers_over(limit=1e7):
    from attnlab.models import GPT, GPTConfig
    from attnlab.perf import gpt_flops_per_token

    for n_layer in range(1, 13):
        model = GPT(GPTConfig(vocab_size=15, block_size=16, n_layer=n_layer, n_embd=128,
                              n_head=4))
        if gpt_flops_per_token(model) > limit:
            return n_layer


question(
    "q6", points=2, variable="q6_layers", expected=_layers_over(),
    misconceptions=[
        misconception("That depth costs at most 10 MFLOP per token: the question asks for the "
                      "first depth above it", value=_layers_over() - 1),
    ],
)
