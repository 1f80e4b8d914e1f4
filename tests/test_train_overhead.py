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


def test_image_cpu_sizes_times_both_models_and_restores_the_preset(tmp_path):
    """benchmarks/image_cpu_sizes.py (issue 12's preset search): a DDGAN and a DDPM row per candidate, with the
    networks' sizes; the data set's preset it swaps in for the build is put back."""
    from fastddgan.models.presets import PRESETS

    spec = importlib.util.spec_from_file_location("image_cpu_sizes",
                                                  os.path.join(ROOT, "benchmarks", "image_cpu_sizes.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = PRESETS["mnist5k"]
    out = tmp_path / "sizes.json"
    assert module.main(["--names", "c16", "--batch", "4", "--steps", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["ddgan", "ddpm"] and PRESETS["mnist5k"] is before
    assert set(rows[0]["params"]) == {"generator", "discriminator"} and set(rows[1]["params"]) == {"denoiser"}
    assert rows[0]["params"]["generator"] > rows[0]["params"]["discriminator"] > 0
    assert all(r["s_per_step"] > 0 and r["steps_in_budget"] > 0 for r in rows)
