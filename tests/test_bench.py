"""attnlab.bench: what is benchmarked is correct, the results have their schema, a tiny run
writes them, and the subprocess measures memory. Never how fast anything is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from attnlab import bench
from attnlab.bench import (
    METHODS,
    BenchConfig,
    format_table,
    make_case,
    summarise,
    validate_results,
)
from attnlab.cli import main as cli_main
from conftest import ROOT

CPU_METHODS = list(bench.default_methods("cpu"))


@pytest.mark.parametrize("method", [m for m in CPU_METHODS if METHODS[m][0] == "exact"])
def test_exact_methods_equal_sdpa(method):
    cfg = BenchConfig(head_dim=16, heads=2, batch=2)
    fn, (q, k, v) = make_case(method, 48, cfg)
    torch.testing.assert_close(fn(), F.scaled_dot_product_attention(q, k, v),
                               atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", [m for m in CPU_METHODS if METHODS[m][0] == "approx"])
def test_approximate_methods_run_and_are_not_exact(method):
    fn, tensors = make_case(method, 600, BenchConfig(head_dim=16))
    q, k, v = tensors[:3]
    out = fn()
    ref = F.scaled_dot_product_attention(q, k, v)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out - ref).abs().max() > 1e-3  # an approximation: r = 256 < S, window 128 < T


def test_layers_are_the_same_function():
    cfg = BenchConfig(head_dim=8, layer_heads=2)
    ours, (x,) = make_case("mha", 10, cfg)
    ref, (x2,) = make_case("torch-mha", 10, cfg)
    torch.testing.assert_close(x, x2)
    torch.testing.assert_close(ours(), ref(), atol=1e-5, rtol=1e-4)


def test_backward_cases_have_gradients():
    fn, tensors = make_case("chunked", 32, BenchConfig(head_dim=16), requires_grad=True)
    fn().sum().backward()
    assert all(t.grad is not None for t in tensors[:3])


def test_make_case_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        make_case("fast", 16, BenchConfig())


def test_peak_rss_sees_a_known_allocation_in_a_fresh_process():
    code = ("import torch\nfrom attnlab.bench import peak_rss_during\n"
            "x = torch.ones(8)\n"
            "_, n, how = peak_rss_during(lambda: torch.ones(64 * 2**20 // 4).sum())\n"
            "print(n, how)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True).stdout.split()
    extra, how = int(out[0]), out[1]
    assert how in ("rss_hwm_reset", "rss_lifetime_peak")
    if how == "rss_hwm_reset":  # a 64 MiB tensor, touched: at least 60 MiB above the baseline
        assert 60 * 2**20 <= extra < 200 * 2**20


def _rec(method, T, p, time_s, peak, status="ok"):
    r = {"method": method, "kind": METHODS[method][0], "T": T, "pass": p, "status": status,
         "device": "cpu", "device_name": "CPU", "versions": {"torch": "x"}, "dtype": "float32"}
    if status == "ok":
        r.update(time_s=time_s, times_s=[time_s], peak_bytes=peak, memory_method="rss_hwm_reset")
    else:
        r["reason"] = "why"
    return r


def test_summary_ratios_and_targets_on_hand_made_records():
    recs = [_rec("naive", 8192, "forward", 2.0, 1000), _rec("chunked", 8192, "forward", 1.0, 100),
            _rec("naive", 8192, "forward+backward", 5.0, 1000),
            _rec("chunked", 8192, "forward+backward", 6.0, 300),
            _rec("sdpa", 256, "forward", 1.0, 0), _rec("functional", 256, "forward", 1.2, 0),
            _rec("sdpa", 512, "forward", 1.0, 0), _rec("functional", 512, "forward", 1.0, 0),
            _rec("mha", 512, "forward", 1.0, 0, status="skipped")]
    targets = {t["target"]: t for t in summarise(recs)["targets"]}
    fwd_mem = targets["chunked / naive peak memory, forward, T = 8192"]
    assert fwd_mem["value"] == pytest.approx(0.1) and fwd_mem["met"] is True
    assert targets["chunked / naive peak memory, forward+backward, T = 8192"]["met"] is False
    func = targets["functional.attention time / SDPA time (forward)"]
    assert func["value"] == pytest.approx(1.1) and "worst 1.20" in func["how"]
    assert targets["MultiHeadAttention / nn.MultiheadAttention time (forward+backward)"][
        "met"] is None


def test_schema_rejects_broken_documents():
    doc = {"schema": 1, "device": "cpu", "device_name": "CPU", "versions": {}, "config": {},
           "records": [_rec("naive", 256, "forward", 0.1, 5)], "summary": {}}
    validate_results(doc)
    for key, value in (("time_s", -1.0), ("peak_bytes", "a lot"), ("method", "magic"),
                       ("status", "maybe")):
        bad = json.loads(json.dumps(doc))
        bad["records"][0][key] = value
        with pytest.raises(ValueError):
            validate_results(bad)
    with pytest.raises(ValueError, match="needs a reason"):
        validate_results({**doc, "records": [{**_rec("naive", 256, "forward", 0, 0, "skipped"),
                                              "reason": None}]})


def test_a_tiny_run_writes_json_plots_and_a_table(tmp_path, capsys):
    rc = cli_main(["bench", "--lengths", "64", "--methods", "naive,chunked,triton",
                   "--passes", "forward,forward+backward", "--device", "cpu",
                   "--min-time", "0", "--repeats", "1", "--out", str(tmp_path),
                   "--no-progress"])
    assert rc == 0
    doc = json.loads((tmp_path / "cpu.json").read_text())
    validate_results(doc)
    assert (tmp_path / "cpu_time.png").stat().st_size > 0
    assert (tmp_path / "cpu_memory.png").stat().st_size > 0
    by = {(r["method"], r["pass"]): r for r in doc["records"]}
    assert len(by) == 6
    for p in ("forward", "forward+backward"):
        for m in ("naive", "chunked"):
            r = by[(m, p)]
            assert r["status"] == "ok", r
            assert r["max_abs_err"] < 1e-4 and r["peak_bytes"] >= 0
            assert r["device_name"] == doc["device_name"] and "torch" in r["versions"]
        assert by[("triton", p)]["status"] == "skipped"
    out = capsys.readouterr().out
    assert "naive" in out and "chunked" in out and "Targets:" in out
    assert format_table(doc).splitlines()[0].startswith(doc["device_name"])


def test_bad_options_are_usage_errors(tmp_path, capsys):
    assert cli_main(["bench", "--lengths", "a,b", "--out", str(tmp_path)]) == 2
    assert cli_main(["bench", "--methods", "fast", "--out", str(tmp_path),
                     "--no-progress"]) == 2
    assert "unknown method" in capsys.readouterr().err
