"""Export the EMA network of a trained model for sharing: a folder with ``network.safetensors`` (the EMA weights
of the DDGAN generator or of the DDPM denoiser) and ``config.json`` (how to rebuild it, and the schedule).

    python -m fastddgan.export runs/mnist/checkpoints/final.pt exported/mnist
    model = fastddgan.load("exported/mnist")       # ready for fastddgan.sample (no optimisers, no discriminator
    images = fastddgan.sample(model, n=64, seed=0)  # weights: the export is for sampling only)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Union

import torch

from ._cli import ArgumentParser
from ._io import atomic_write, atomic_write_json, check_writable

FORMAT, VERSION = "fastddgan-export", 1
WEIGHTS, CONFIG = "network.safetensors", "config.json"


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError:
        raise ImportError("export needs the safetensors package: pip install safetensors") from None
    return st


def export(model, folder: Union[str, os.PathLike]) -> str:
    """Write the EMA network of ``model`` (a DDGAN / DDPM built by ``from_preset``, or a checkpoint path) to
    ``folder``; returns the folder."""
    from .checkpoint import check_finite, load

    st = _safetensors()
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    config = getattr(model, "build_config", None)
    if config is None:
        raise ValueError("model: only models built with fastddgan.from_preset (or loaded from a checkpoint) can be "
                         "exported")
    weights = {k: v.detach().cpu().contiguous() for k, v in model.ema.module.state_dict().items()}
    check_finite(weights, "model: the EMA network")
    meta = {"format": FORMAT, "version": VERSION, "kind": config["kind"], "config": config,
            "schedule": {"betas": model.schedule.betas.tolist(), "timesteps": model.schedule.timesteps.tolist(),
                         "name": model.schedule.name},
            "step": int(getattr(model, "step", 0))}
    json.dumps(meta)  # fail before writing anything if the config is not plain data
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"folder: {folder!r} is a file; expected a folder to write {WEIGHTS} and {CONFIG} into")
    check_writable(os.path.join(folder, CONFIG), "folder")  # makes the folder; one line if it cannot be written
    atomic_write(os.path.join(folder, WEIGHTS), lambda f: f.write(st.save(weights)))
    atomic_write_json(os.path.join(folder, CONFIG), meta)
    return folder


def export_folder(path: Union[str, os.PathLike]) -> Optional[str]:
    """The export folder that ``path`` names (the folder itself, or its ``network.safetensors`` or ``config.json``
    file), or None when ``path`` is not about an export."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return path
    if os.path.basename(path) in (WEIGHTS, CONFIG) and os.path.isfile(path):
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.basename(path) == WEIGHTS or os.path.isfile(os.path.join(folder, WEIGHTS)):
            return folder
    return None


def load_export(folder: Union[str, os.PathLike], map_location="cpu"):
    """Rebuild a model from an :func:`export` folder (the network and its EMA copy both hold the exported
    weights)."""
    from .checkpoint import check_finite, from_config
    from .schedule import Schedule

    folder = os.fspath(folder)
    config_path, weights_path = os.path.join(folder, CONFIG), os.path.join(folder, WEIGHTS)
    if not (os.path.isfile(config_path) and os.path.isfile(weights_path)):
        raise FileNotFoundError(f"path: {folder!r} is a folder but not a fastddgan export (expected {CONFIG} and "
                                f"{WEIGHTS} in it)")
    try:
        with open(config_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"path: cannot read {config_path!r} ({err})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"path: {config_path!r} is not a fastddgan export of version {VERSION}")
    st = _safetensors()
    try:
        weights = st.load_file(weights_path)
    except Exception as err:  # noqa: BLE001 - a corrupt or truncated file
        raise ValueError(f"path: {weights_path!r} is truncated or corrupt ({err})") from None
    check_finite(weights, f"path: {weights_path!r}")
    config, sched = meta["config"], meta["schedule"]
    schedule = Schedule(torch.tensor(sched["betas"], dtype=torch.float64),
                        timesteps=torch.tensor(sched["timesteps"], dtype=torch.long), name=sched["name"])
    model = from_config(config, schedule, config_path)
    model.ema.module.load_state_dict(weights)
    net = model.generator if config["kind"] == "ddgan" else model.model
    net.load_state_dict(weights)
    model.step = int(meta.get("step", 0))
    return model.to(map_location)


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m fastddgan.export", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a fastddgan checkpoint (.pt)")
    parser.add_argument("folder", help="the folder to write network.safetensors and config.json into")
    args = parser.parse_args(argv)
    try:
        folder = export(args.checkpoint, args.folder)
    except (OSError, ValueError, ImportError) as err:
        print(f"python -m fastddgan.export: error: {err}", file=sys.stderr)
        return 2
    print(f"exported the EMA network of {args.checkpoint} to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
