"""Which checkpoint a run continues from (--resume auto | PATH), and whether it belongs to this run's config."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

from .. import _checks, checkpoint
from .config import ConfigError, incompatible
from .run_folder import RunFolder


def newest_valid(run: RunFolder, say: Callable[[str], None]) -> Optional[Dict[str, Any]]:
    """The newest readable checkpoint of the run folder (read, with its "path"), warning about unreadable ones."""
    for _, path in run.list_checkpoints():
        try:
            state = checkpoint.read(path)
        except ValueError as err:
            say(f"warning: skipping unreadable checkpoint {path} ({err})")
            continue
        state["path"] = path
        return state
    return None


def checkpoint_to_resume(c: Dict[str, Any], run: RunFolder, say: Callable[[str], None]) -> Optional[Dict[str, Any]]:
    """The checkpoint that --resume names for config ``c`` (None: a fresh run), checked against ``c``: written by
    the trainer, a well-formed training record, the same config where it matters and the same global batch."""
    if c["resume"] is None:
        if run.holds_run():
            raise ConfigError(f"--out: {run.out} already holds a run (config.json / checkpoints); pass "
                              f"--resume auto to continue it, or choose another --out")
        return None
    if c["resume"] == "auto":
        state = newest_valid(run, say)
        if state is None:
            if run.list_checkpoints():
                raise ConfigError(f"--resume auto: no readable checkpoint in {run.checkpoints} (each is "
                                  f"truncated or corrupt); pass --resume PATH, or move them away to start "
                                  f"over")
            return None  # nothing to resume: a fresh run in this folder
    else:
        try:
            state = checkpoint.read(c["resume"])
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError("--resume: " + str(err).removeprefix("path: ")) from None
        state["path"] = os.path.abspath(c["resume"])
    extra = state.get("extra", {})
    stored = extra.get("train_config")
    if stored is None:
        raise ConfigError(f"--resume: {state['path']} was not written by python -m fastddgan.train (no "
                          f"training config in it)")
    counts = {"batch_size": stored.get("batch_size"), "world_size": stored.get("world_size", 1),
              "recoveries": extra.get("recoveries", 0)}
    bad = {k: v for k, v in counts.items()
           if not _checks.is_int(v) or v < (0 if k == "recoveries" else 1)}
    if bad:
        raise ConfigError(f"--resume: {state['path']} holds a malformed training record ("
                          + ", ".join(f"{k} = {v!r}" for k, v in bad.items()) + ")")
    differ = incompatible(stored, c)
    if stored.get("world_size", 1) * stored["batch_size"] != c["world_size"] * c["batch_size"]:
        differ.append(f"global batch (checkpoint {stored.get('world_size', 1)} x {stored['batch_size']}, "
                      f"now {c['world_size']} x {c['batch_size']})")
    if differ:
        raise ConfigError(f"--resume: {state['path']} belongs to a run with a different config: "
                          + "; ".join(differ))
    return state


__all__ = ["checkpoint_to_resume", "newest_valid"]
