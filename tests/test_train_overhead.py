"""benchmarks/train_overhead.py on the tiny preset: one profiled training step split into the networks' time
(forward, backward, optimisers) and the time outside them, with the largest ops outside."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_split_of_one_step(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_overhead", os.path.join(ROOT, "benchmarks", "train_overhead.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "split.json"
    assert module.main(["--preset", "tiny", "--batch", "8", "--warmup", "0", "--steps", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 1 and result["preset"] == "tiny" and result["loss"] == "js"
    assert 0 < result["network_us"] < result["total_us"]
    assert result["outside_us"] == result["total_us"] - result["network_us"]
    assert 0 < result["outside_fraction"] < 0.5
    names = [name for name, _ in result["top_outside_self_us"]]
    assert not any(name.startswith("aten::convolution") or name.startswith("aten::conv") for name in names)
    assert "outside" in capsys.readouterr().out
