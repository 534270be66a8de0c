"""attnlab.bench: what is benchmarked is correct, the results have their schema, a tiny run
writes them, and the subprocess measures memory. Never how fast anything is."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict

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
from attnlab.bench.claims import ClaimsConfig, run_claims, validate_claims
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


# ------------------------------------------------------------------ the GPU suite


def test_gpu_suite_dry_run_builds_and_runs_every_case(tmp_path):
    from attnlab.bench_gpu import validate_gpu_results

    env = {"TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "attnlab.cli", "bench", "--suite", "gpu",
                           "--dry-run", "--out", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = tmp_path.glob("dry-run-*.json")
    doc = json.loads(path.read_text())
    validate_gpu_results(doc)
    assert doc["dry_run"] and doc["suite"] == "gpu"
    recs = doc["records"]
    sdpa = [r for r in recs if r["case"] == "sdpa"]
    assert len(sdpa) == 2 * 2 * 4  # bf16, fp16 x forward, forward+backward x 4 backends
    ok = {(r["backend"], r["dtype"], r["pass"]) for r in sdpa if r["status"] == "ok"}
    assert {("math", d, p) for d in ("bfloat16", "float16") for p in bench.PASSES} <= ok
    for r in sdpa:  # every backend that ran is exact up to its dtype's rounding
        assert r["status"] != "ok" or r["max_abs_err"] < 2e-2
    tri = [r for r in recs if r["case"] == "triton"]
    if importlib.util.find_spec("triton") is not None:  # the kernels, in the interpreter
        assert [r["pass"] for r in tri] == list(bench.PASSES)
        assert all(r["status"] == "ok" and r["max_abs_err"] < 1e-4 for r in tri)
    gpt = [r for r in recs if r["case"] == "gpt"]
    assert [r["compile"] for r in gpt] == [False, True] and "speedup_vs_eager" in gpt[1]
    assert all(r["tokens_per_second"] > 0 and r["mfu"] is None for r in gpt)  # no CPU peak
    (ddp,) = [r for r in recs if r["case"] == "ddp"]
    assert ddp["status"] == "skipped" and "attnlab.distributed" in ddp["command"]
    assert doc["targets"] == []  # nothing a dry run measures is a target
    assert "dry run" in proc.stdout


def test_gpu_suite_refuses_a_cpu_run_and_bad_documents(tmp_path, capsys):
    from attnlab.bench_gpu import suite_tag, validate_gpu_results

    assert cli_main(["bench", "--suite", "gpu", "--device", "cpu", "--out",
                     str(tmp_path)]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert cli_main(["bench", "--dry-run", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())
    good = {"suite": "gpu", "schema": 1, "dry_run": False, "device": "cuda",
            "device_name": "NVIDIA H100 80GB HBM3", "versions": {}, "config": {},
            "records": [], "targets": []}
    validate_gpu_results(good)
    for bad in ({**good, "suite": "attention"},
                {**good, "records": [{"case": "sdpa", "status": "ok", "time_s": 0.0,
                                      "peak_bytes": 1}]},
                {**good, "records": [{"case": "gpt", "status": "skipped"}]},
                {**good, "records": [{"case": "what", "status": "ok"}]}):
        with pytest.raises(ValueError):
            validate_gpu_results(bad)
    assert suite_tag("NVIDIA H100 80GB HBM3", False) == "nvidia-h100-80gb-hbm3"


def test_committed_results_skip_dry_runs_and_other_files(tmp_path):
    from attnlab.bench_gpu import committed_results

    doc = {"suite": "gpu", "schema": 1, "dry_run": False, "device": "cuda",
           "device_name": "NVIDIA H100 80GB HBM3", "versions": {"torch": "2.13.0"},
           "config": {}, "records": [], "targets": []}
    (tmp_path / "nvidia-h100-80gb-hbm3.json").write_text(json.dumps(doc))
    (tmp_path / "dry-run-cpu.json").write_text(json.dumps({**doc, "dry_run": True}))
    (tmp_path / "cpu.json").write_text(json.dumps({"schema": 1, "records": []}))
    (tmp_path / "broken.json").write_text("{")
    assert [d["device_name"] for d in committed_results(tmp_path)] == [doc["device_name"]]
    (tmp_path / "bad.json").write_text(json.dumps({**doc, "records": [{"case": "x"}]}))
    with pytest.raises(ValueError):  # a committed document that is wrong is an error
        committed_results(tmp_path)


def test_claims_suite_measures_every_claim_and_reports_without_asserting(tmp_path, capsys):
    from attnlab.bench.claims import CLAIMS

    assert cli_main(["bench", "--suite", "claims", "--quick", "--out", str(tmp_path),
                     "--no-progress"]) == 0
    doc = json.loads((tmp_path / "claims-cpu.json").read_text())
    validate_claims(doc)
    assert [c["claim"] for c in doc["claims"]] == list(CLAIMS)
    assert {c["chapter"] for c in doc["claims"]} == {3, 6, 8, 19}
    out = capsys.readouterr().out
    assert f"of {len(CLAIMS)} held" in out and "claims-cpu.json" in out
    kv = next(c for c in doc["claims"] if c["claim"] == "kv_cache")
    # `holds` is what the numbers say, in either direction
    assert kv["holds"] == (kv["with_cache_seconds"] < kv["without_cache_seconds"])


def test_claims_suite_rejects_unknown_claims_and_broken_documents():
    with pytest.raises(ValueError, match="unknown claims"):
        run_claims(ClaimsConfig.quick(), names=("speed_of_light",))
    with pytest.raises(ValueError, match="repeats"):
        run_claims(ClaimsConfig(repeats=0), names=("kv_cache",))
    good = run_claims(ClaimsConfig.quick(), names=("kv_cache",))
    validate_claims(good)
    for broken, message in (({**good, "schema": 99}, "schema"),
                            ({k: v for k, v in good.items() if k != "device"}, "device"),
                            ({**good, "claims": [{**good["claims"][0], "holds": "yes"}]},
                             "true or false"),
                            ({**good, "claims": [{**good["claims"][0],
                                                  "speedup": float("nan")}]}, "speedup")):
        with pytest.raises(ValueError, match=message):
            validate_claims(broken)


def test_committed_claims_results_are_valid_and_name_the_machine():
    path = ROOT / "benchmarks" / "results" / "claims-cpu.json"
    doc = json.loads(path.read_text())
    validate_claims(doc)
    assert doc["device"].startswith("CPU (")
    assert doc["config"] == json.loads(json.dumps(asdict(ClaimsConfig())))
    # benchmarks/README.md says that every claim held on that machine
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert ("on which every\nclaim held" in readme) == all(c["holds"] for c in doc["claims"])
