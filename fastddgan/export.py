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
from typing import Union

from ._cli import ArgumentParser
from ._io import atomic_write, atomic_write_json, check_writable
from .checkpoint import EXPORT_CONFIG as CONFIG, EXPORT_FORMAT as FORMAT, EXPORT_VERSION as VERSION, \
    EXPORT_WEIGHTS as WEIGHTS, check_finite, export_folder, load, load_export, safetensors
from .family import is_model


def export(model, folder: Union[str, os.PathLike]) -> str:
    """Write the sampling (EMA) network of ``model`` (a DDGAN / DDPM built by ``from_preset``, or a checkpoint path)
    to ``folder``; returns the folder. :func:`fastddgan.load` reads it back."""
    st = safetensors()
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    config = getattr(model, "build_config", None)
    if config is None or not is_model(model):
        raise ValueError("model: only models built with fastddgan.from_preset (or loaded from a checkpoint) can be "
                         "exported")
    weights = {k: v.detach().cpu().contiguous() for k, v in model.sampling_network().state_dict().items()}
    check_finite(weights, "model: the EMA network")
    meta = {"format": FORMAT, "version": VERSION, "kind": config["kind"], "config": config,
            "schedule": {"betas": model.schedule.betas.tolist(), "timesteps": model.schedule.timesteps.tolist(),
                         "name": model.schedule.name},
            "step": int(model.train_state.step)}
    json.dumps(meta)  # fail before writing anything if the config is not plain data
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"folder: {folder!r} is a file; expected a folder to write {WEIGHTS} and {CONFIG} into")
    check_writable(os.path.join(folder, CONFIG), "folder")  # makes the folder; one line if it cannot be written
    atomic_write(os.path.join(folder, WEIGHTS), lambda f: f.write(st.save(weights)))
    atomic_write_json(os.path.join(folder, CONFIG), meta)
    return folder


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


__all__ = ["export", "export_folder", "load_export", "main", "FORMAT", "VERSION", "WEIGHTS", "CONFIG"]

if __name__ == "__main__":
    sys.exit(main())
