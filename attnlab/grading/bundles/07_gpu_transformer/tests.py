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

# --- cell 30 (ex07-n03)
# TESTS
AMP = """
import torch
import torch.nn.functional as F
def amp_logits_and_loss(x, weight, targets):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = F.linear(x, weight)
        loss = F.cross_entropy(logits, targets)
    return logits, loss
"""


def _amp_case(N, C, V, g):
    # weights that are multiples of 1/8: the products and sums are exact in float32, so
    # the only rounding is autocast's, the same in every process
    return (torch.randn(N, C, generator=g), torch.randint(-8, 9, (V, C), generator=g) / 8,
            torch.randint(0, V, (N,), generator=g))


g = torch.Generator().manual_seed(27)
question(
    "q7", points=2, function="amp_logits_and_loss", reference=AMP,
    public=[case(*_amp_case(4, 8, 5, g), note="4 examples, C = 8, V = 5")],
    hidden=[case(*_amp_case(16, 16, 10, g), note="16 examples, C = 16, V = 10"),
            case(*_amp_case(1, 4, 3, g), note="one example")],
    misconceptions=[
        misconception("Your logits are float32: under bf16 autocast the matrix product runs "
                      "in bf16 (is the autocast there, on the CPU?)",
                      code=edited(AMP, ('torch.autocast("cpu", dtype=torch.bfloat16)',
                                        'torch.autocast("cpu", enabled=False)'))),
        misconception("You cast to bf16 by hand, so the cross-entropy ran in bf16 too: "
                      "autocast keeps it in float32",
                      code="import torch.nn.functional as F\n"
                           "def amp_logits_and_loss(x, weight, targets):\n"
                           "    logits = F.linear(x.bfloat16(), weight.bfloat16())\n"
                           "    return logits, F.cross_entropy(logits, targets)"),
        misconception("That is float16 autocast: bf16 is torch.bfloat16",
                      code=edited(AMP, ("torch.bfloat16", "torch.float16"))),
    ],
)

# --- cell 34 (ex07-n07)
# TESTS
BACKEND = """
import warnings
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
def sdpa_backend(q, k, v, backends):
    allowed = [getattr(SDPBackend, name) for name in backends]
    with sdpa_kernel(allowed):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    order = [SDPBackend(i) for i in torch._C._get_sdp_priority_order()]
    for backend in [b for b in order if b in allowed]:
        try:
            with warnings.catch_warnings(), sdpa_kernel([backend]):
                warnings.simplefilter("ignore")
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
        except RuntimeError:
            continue
        return out, backend.name
"""


def _qkv(B, H, T, D, g, Dv=None, dtype=torch.float32):
    return [torch.randn(B, H, T, d, generator=g).to(dtype) for d in (D, D, Dv or D)]


g = torch.Generator().manual_seed(28)
question(
    "q8", points=2, function="sdpa_backend", reference=BACKEND,
    public=[case(*_qkv(1, 2, 6, 8, g), ["MATH", "FLASH_ATTENTION"],
                 note="math and flash allowed, listed math first"),
            case(*_qkv(1, 2, 6, 8, g), ["MATH"], note="math alone"),
            case(*_qkv(1, 2, 6, 8, g, Dv=4), ["FLASH_ATTENTION", "MATH"],
                 note="values of another width than the keys (D_v = 4, D = 8), which the "
                      "flash kernel refuses")],
    hidden=[case(*_qkv(2, 4, 5, 16, g), ["EFFICIENT_ATTENTION", "MATH", "FLASH_ATTENTION"],
                 note="three backends allowed"),
            case(*_qkv(1, 1, 4, 8, g, dtype=torch.bfloat16), ["MATH", "FLASH_ATTENTION"],
                 note="bf16 inputs"),
            case(*_qkv(2, 2, 3, 8, g, Dv=16), ["MATH", "EFFICIENT_ATTENTION"],
                 note="D_v = 16, math and memory-efficient allowed")],
    misconceptions=[
        misconception("sdpa_kernel restricts the backends but does not order them: PyTorch "
                      "tries the allowed ones in its own priority order, not in your list's",
                      code=edited(BACKEND, ("[b for b in order if b in allowed]", "allowed"))),
        misconception("You did not restrict the backends: only those in the list may run",
                      code=edited(BACKEND, ("[b for b in order if b in allowed]", "order"))),
        misconception("An allowed backend may refuse the inputs: check that it runs them "
                      "(the flash kernel needs values as wide as the keys) before naming it",
                      code=edited(BACKEND, ("                F.scaled_dot_product_attention("
                                            "q, k, v, is_causal=True)\n", ""))),
    ],
)

# --- cell 38 (ex07-n11)
# TESTS
DDP = """
import torch
import torch.nn.functional as F
def ddp_step(model, x, y, world_size, lr):
    # one process on the whole batch: what DDP's averaged step equals
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        after = [(p - lr * g).detach() for p, g in zip(model.parameters(), grads)]
    return [[p.clone() for p in after] for _ in range(world_size)]
"""
WRONG_DDP = """
import copy
import torch
import torch.nn.functional as F
def ddp_step(model, x, y, world_size, lr):
    replicas = [copy.deepcopy(model) for _ in range(world_size)]
    grads = []
    for rank, replica in enumerate(replicas):
        shard = torch.arange(rank, x.shape[0], world_size)
        loss = F.cross_entropy(replica(x[shard]), y[shard])
        grads.append(torch.autograd.grad(loss, list(replica.parameters())))
    mean = [torch.stack(gs).mean(0) for gs in zip(*grads)]
    with torch.no_grad():
        for rank, replica in enumerate(replicas):
            for p, g in zip(replica.parameters(), mean):
                p -= lr * g
    return [[p.detach().clone() for p in r.parameters()] for r in replicas]
"""


def _linear(seed, C, V):
    return Model("torch.nn.Linear", {"in_features": C, "out_features": V}, seed=seed)


def _ddp_case(seed, N, C, V, W, lr, g):
    return (_linear(seed, C, V), torch.randn(N, C, generator=g),
            torch.randint(0, V, (N,), generator=g), W, lr)


g = torch.Generator().manual_seed(29)
question(
    "q9", points=3, function="ddp_step", reference=DDP,
    public=[case(*_ddp_case(0, 8, 4, 3, 2, 0.5, g), note="2 ranks, 4 examples each")],
    hidden=[case(*_ddp_case(1, 12, 6, 4, 4, 0.1, g), note="4 ranks, 3 examples each"),
            case(*_ddp_case(2, 6, 3, 2, 1, 1.0, g), note="a single rank"),
            case(*_ddp_case(3, 16, 5, 5, 2, 0.3, g), note="2 ranks, 8 examples each")],
    misconceptions=[
        misconception("You summed the ranks' gradients: DDP's all-reduce averages them, so "
                      "the step is the one-process step on the whole batch",
                      code=edited(WRONG_DDP, ("torch.stack(gs).mean(0)", "torch.stack(gs).sum(0)"))),
        misconception("Each replica stepped with its own gradient: without the all-reduce the "
                      "replicas drift apart",
                      code=edited(WRONG_DDP, ("zip(replica.parameters(), mean)",
                                              "zip(replica.parameters(), grads[rank])"))),
        misconception("Each rank's loss is the mean over its own shard, not the sum: with sums "
                      "the step grows with the shard size",
                      code=edited(WRONG_DDP, ("y[shard])", "y[shard], reduction='sum')"))),
    ],
)
