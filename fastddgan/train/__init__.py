"""``python -m fastddgan.train``: train a DDGAN or DDPM from the command line.

    python -m fastddgan.train --model ddgan --dataset mnist5k --out runs/mnist5k --steps 2000
    python -m fastddgan.train --config runs.yaml --loss hellinger        # flags override the file
    python -m fastddgan.train --out runs/mnist5k --dataset mnist5k --resume     # continue (auto)
    torchrun --nproc_per_node=4 -m fastddgan.train --dataset cifar10 --out runs/c10   # data-parallel

``python -m fastddgan.train --help`` lists every option with its default; :mod:`.run_folder` describes what the
run folder holds. From Python: ``fastddgan.train.main(argv)`` or ``Trainer(config).fit()``.
"""

from __future__ import annotations

import errno
import sys
from typing import Optional, Sequence

from ..checkpoint import DiskFullError
from ..data import DataNotFoundError
from . import distributed
from .config import OPTIONS, ConfigError, build_parser, parse, resolve
from .loop import Interrupted, Trainer, TrainingDiverged

EXIT_WRITE, EXIT_USAGE, EXIT_DIVERGED = 1, 2, 3


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; returns the exit status (0 done, 1 the disk is full, 2 bad input, 3 diverged, 128 + signal
    if stopped)."""
    trainer = None
    try:
        trainer = Trainer(parse(argv))
        trainer.fit()
    except (ConfigError, DataNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"python -m fastddgan.train: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        why = str(err) if isinstance(err, DiskFullError) else \
            f"disk full ({err.strerror})" + (f" writing {err.filename}" if err.filename else "")
        print(f"python -m fastddgan.train: error: {why}; free some space, then continue with --resume auto",
              file=sys.stderr)
        return EXIT_WRITE
    except TrainingDiverged as err:
        print(f"python -m fastddgan.train: stopped: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except Interrupted as stop:
        return 128 + stop.signum
    finally:
        if trainer is not None:
            distributed.shutdown(trainer.ctx)
    return 0


__all__ = ["main", "Trainer", "OPTIONS", "ConfigError", "TrainingDiverged", "build_parser", "parse", "resolve"]
