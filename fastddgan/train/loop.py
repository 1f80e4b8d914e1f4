"""The trainer behind ``python -m fastddgan.train`` (see :mod:`fastddgan.train` for the command).

The parts: :mod:`.build` (the model from the config), :mod:`.resume` (which checkpoint to continue from),
:mod:`.guard` (skipping non-finite steps), :mod:`.progress` (the terminal), :mod:`.run_folder` (the files); the
model's :class:`~fastddgan.train_state.TrainState` holds the optimisers, LR schedules and step that checkpoints save,
and does the learning-rate surgery of resuming (``stretch_schedules``) and recovering (``scale_learning_rates``).

Per step: the batch of this step (:mod:`.batches`), the step's generators seeded from (seed, process, step), one
``model.train_step``, metrics kept on the device and averaged over each log interval. Checkpoints every
``ckpt_every`` steps, sample grids every ``sample_every`` steps, ``final.pt`` and an export at the end.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Optional

import torch

from .. import checkpoint, ops
from .._threads import torch_threads
from ..data import TOY2D, load_dataset
from ..export import export
from ..sampling import sample
from . import distributed, plots
from .batches import STREAM_TRAIN, Batches, step_seed
from .build import build_model, check_networks, dataset_info
from .config import ConfigError, resolve
from .discriminator_watch import FlatDiscriminatorWatch
from .guard import NonFiniteGuard, TrainingDiverged, all_finite
from .progress import Progress, duration, long_run_warning, memory_use, plural
from .resume import checkpoint_to_resume, newest_valid
from .run_folder import FINAL, RunFolder
from .scoring import InTrainingScores

SAMPLE_SEED = 1234  # the fixed seed of the sample grids, so that grids of different steps compare


def _finite_mean(pair: torch.Tensor) -> float:
    """The logged mean of a metric from its [sum of finite values, count of finite values] (NaN when none was)."""
    total, count = pair.tolist()
    return total / count if count else math.nan


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, raw: Dict[str, Any]):
        self._progress = None  # the running Progress (its bar) while _train runs: _say writes above it
        self.ctx = distributed.init(raw.get("device"))
        ops.select(self.ctx.device)  # a FASTDDGAN_BACKEND that cannot run here: one line now, not at the first step
        if not raw.get("dataset"):
            raise ConfigError("--dataset: required (on the command line or in --config)")
        if str(raw["dataset"]).startswith("folder:") and raw.get("image_size") is None:
            raise ConfigError(f"--image-size: required for --dataset {raw['dataset']} (the side of the square "
                              f"images, e.g. 64)")
        self.dataset = load_dataset(raw["dataset"], data_dir=raw["data_dir"], image_size=raw["image_size"],
                                    channels=raw["channels"])
        self.info = {**dataset_info(self.dataset), "world_size": self.ctx.world_size,
                     "device": self.ctx.device.type}
        self.c = c = resolve(raw, self.info)
        check_networks(c, self.info)
        # --eval-every's metrics chosen (and a missing classifier refused) before the run folder is touched
        self.scores = InTrainingScores(c, self.dataset, self.info, c["out"], self.ctx.device) \
            if c["eval_every"] and self.ctx.main else None
        c["world_size"] = self.ctx.world_size
        self.run = RunFolder(c["out"], active=self.ctx.main)
        removed = self.run.lock()  # released by fit's end, by close(), or by the process's end (even kill -9)
        try:
            if removed:
                self._say(f"removed {plural(len(removed), 'temporary checkpoint file')} left by a killed run")
            self._build()
        except BaseException:
            self.run.close()
            raise

    def _build(self) -> None:
        c = self.c
        state = checkpoint_to_resume(c, self.run, self._say)
        self.model = build_model(c, self.info).to(self.ctx.device)
        self.state = self.model.train_state  # optimisers, LR schedules, loss scalers, step
        if state is not None:
            try:
                checkpoint.restore(self.model, state)
            except ValueError as err:
                raise ConfigError("--resume: " + str(err).removeprefix("path: ")) from None
            self.state.stretch_schedules(c["steps"])
        self.start_step = self.state.step
        if self.ctx.active:
            distributed.broadcast_module(self.model)
            self.state.gradient_sync = distributed.gradient_sync(self.ctx.world_size)
        self.guard = NonFiniteGuard(list(self.state.optimizers.values()))
        self.d_watch = FlatDiscriminatorWatch()
        self.generator = torch.Generator(self.ctx.device)
        self.batches = Batches(self.dataset, c["batch_size"], self.ctx.device, c["seed"], self.ctx.rank,
                               self.ctx.world_size, labels=c["cond"], hflip=c["hflip"],
                               num_workers=c["num_workers"], start_step=self.start_step, total_steps=c["steps"])
        # recoveries so far (kept in the checkpoints: their learning rates are already 0.5 ** recoveries of --lr-*)
        self.recoveries = int(state.get("extra", {}).get("recoveries", 0)) if state is not None else 0
        self._signal = None
        self.resumed_from = state.get("path") if state is not None else None
        if self.scores is not None:
            self.scores.resume(self.start_step, self._say)

    # ------------------------------------------------------------------ output
    def _say(self, text: str) -> None:
        if self.ctx.main:
            stream = sys.stderr if text.startswith("warning") else sys.stdout
            if self._progress is not None:  # above the tqdm bar, not through it
                self._progress.write(text, stream)
            else:
                print(text, file=stream, flush=True)

    def _event(self, event: str, **fields) -> None:
        self.run.log({"event": event, "step": self.state.step, "time": time.time(), **fields})

    def save_checkpoint(self, path: str, keep: Optional[int] = None) -> bool:
        """Write a checkpoint unless the weights are not finite (never save a NaN checkpoint). ``keep``: a periodic
        checkpoint; the older ones beyond the newest ``keep`` are removed, as many as possible before it is written
        (see RunFolder.make_room). A full disk raises checkpoint.DiskFullError."""
        if not all_finite(self.model):
            self._say(f"warning: weights not finite at step {self.state.step}; checkpoint {path} not written")
            self._event("nonfinite_weights")
            return False
        if self.ctx.main:
            if keep is not None:
                self.run.make_room(keep)
            checkpoint.save(self.model, path, extra={"train_config": self.c, "recoveries": self.recoveries})
            if keep is not None:
                self.run.prune(keep, path)
        return True

    def describe(self) -> str:
        """What is trained, in a few words: 'DDGAN js, T=4 on ring8 (preset toy2d)', with --net / --diffaug when
        given."""
        c = self.c
        what = (f"DDGAN {c['loss']}, T={c['T']}" if c["model"] == "ddgan" else
                f"DDPM {c['prediction']}, T={c['T']}")
        changed = "".join(f", {k} {c[k]}" for k in ("net", "diffaug") if c.get(k))
        return f"{what}{', class-conditional' if c['cond'] else ''} on {c['dataset']} (preset {c['preset']}{changed})"

    def write_samples(self) -> Optional[str]:
        """samples/step-N.png from the EMA network and a fixed seed, captioned (2-D data: a scatter plot against
        the data, with the exact mixture metrics in the title), then the training curves (curves.png)."""
        if not self.ctx.main:
            return None
        c, n, step = self.c, self.c["sample_n"], self.state.step
        labels = torch.arange(n) % self.info["num_classes"] if c["cond"] else None
        T = c["sample_steps"] if c["model"] == "ddpm" else None
        x = sample(self.model, T, n, seed=SAMPLE_SEED, device=self.ctx.device, class_labels=labels)
        how = f"EMA weights, seed {SAMPLE_SEED}" + (f", {T} sampling steps" if T is not None else "")
        title = [f"{self.describe()}: step {step} of {c['steps']}"]
        if self.info["kind"] == "toy":
            reference = self.dataset.sample(n, generator=torch.Generator().manual_seed(SAMPLE_SEED))
            mixture = TOY2D.get(c["dataset"])
            if mixture is not None:
                m = mixture.mode_stats(x.float().cpu())
                how += (f"; modes {m['modes_covered']}/{m['num_modes']}, within 3 std "
                        f"{100 * m['high_quality']:.0f}%")
            image = plots.scatter_plot(x, reference, title + [f"{n} samples, {how}"])
        else:
            rows = max(1, round(math.sqrt(n)))
            if labels is not None:
                how += f"; labels 0..{self.info['num_classes'] - 1} in turn"
            image = plots.sample_grid(x, rows, title + [how])
        path = self.run.save_png(image, self.run.sample_name(step))
        self.write_curves()
        return path

    def score(self) -> None:
        """--eval-every: the EMA network's scores at this step, logged (process 0; the others wait)."""
        if self.scores is not None and not all_finite(self.model):
            self._say(f"warning: weights not finite at step {self.state.step}; not scored")
            self._event("eval", skipped="weights not finite")
        elif self.scores is not None:
            record = self.scores.score(self.model, self.state.step)
            self._event("eval", **record)
            self._say(f"step {self.state.step}: {self.scores.summary(record)} ({record['seconds']:.0f} s)")
        distributed.barrier(self.ctx)

    def write_curves(self) -> Optional[str]:
        if not self.ctx.main:
            return None
        image = plots.training_curves(self.run.read_metrics(), f"{self.describe()}: training curves")
        return None if image is None else self.run.save_png(image, "curves.png")

    def _announce_estimate(self, seconds_per_step: float, measured: int) -> None:
        """One early line: time per step, the expected end and the checkpoint size, so that a run that would
        take days on this machine is noticed in its first minute."""
        c, left = self.c, self.c["steps"] - self.state.step
        size = checkpoint.estimated_size(self.model)
        files = min(c["keep"], c["steps"] // c["ckpt_every"]) + 1
        peak, total = memory_use(self.ctx.device)
        where = "GPU memory" if self.ctx.device.type == "cuda" else "memory (peak resident set)"
        memory = "" if peak is None else (f"; {where} {peak / 2**30:.2f} GiB" +
                                          ("" if total is None else f" of {total / 2**30:.0f} GiB"))
        self._say(f"speed: {seconds_per_step:.3g} s/step over {measured} steps on {self.ctx.device.type} "
                  f"({plural(torch.get_num_threads(), 'thread')}) -> about {duration(left * seconds_per_step)} for the "
                  f"{left} steps left; checkpoints about {size / 1e6:.0f} MB each (up to {files} kept, "
                  f"{files * size / 1e6:.0f} MB){memory}")
        self._event("estimate", seconds_per_step=seconds_per_step, eta_s=left * seconds_per_step,
                    checkpoint_bytes=size, memory_bytes=peak, memory_total_bytes=total)
        if peak is not None and total is not None and peak > 0.8 * total:
            self._say(f"warning: this run uses {peak / 2**30:.1f} GiB, over 80% of the {total / 2**30:.0f} GiB "
                      f"this {self.ctx.device.type} has; a smaller --batch-size (or --preset) leaves room")
        if self.ctx.device.type == "cpu" and self.info["kind"] == "image":
            warning = long_run_warning(left * seconds_per_step, c["preset"], c.get("net"), c["batch_size"],
                                       c["steps"])
            if warning:
                self._say(warning)

    # ------------------------------------------------------------------ the loop
    def _recover(self) -> None:
        """Reload the newest valid checkpoint with half the learning rate, or stop."""
        c = self.c
        state = newest_valid(self.run, self._say) if self.recoveries < 2 else None
        if state is None:
            self._event("diverged", skipped=self.guard.skipped_total)
            raise TrainingDiverged(
                f"the loss was not finite for {c['max_nonfinite']} steps in a row at step {self.state.step}"
                + (" after 2 restarts with halved learning rates" if self.recoveries else
                   " and there is no checkpoint to go back to")
                + "; try lower --lr-g/--lr-d (or --lr), a larger --r1-gamma, or --amp bf16 instead of fp16")
        checkpoint.restore(self.model, state)
        self.recoveries += 1
        # the checkpoint's learning rates are 0.5 ** (its recoveries) of the configured ones: halve them as often as
        # it takes to reach 0.5 ** self.recoveries (restoring alone would replay the first recovery every time)
        self.state.scale_learning_rates(0.5 ** max(self.recoveries - int(state.get("extra", {}).get("recoveries", 0)),
                                                    0))
        self.batches.restart(self.state.step)
        self.d_watch.rewind(self.run.read_metrics(), self.state.step)
        self._event("recovered", checkpoint=state["path"], lr_scale=0.5**self.recoveries)
        self._say(f"warning: non-finite loss for {c['max_nonfinite']} steps; went back to {state['path']} "
                  f"with the learning rates at {0.5**self.recoveries:g} x the configured ones")

    def _handle_signal(self, signum, frame) -> None:
        if self._signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self._signal = signum
        self._say(f"\n{signal.Signals(signum).name}: finishing step {self.state.step + 1}, writing a checkpoint, then "
                  f"stopping (send it again to stop at once)")

    def close(self) -> None:
        """Release the run folder (its lock, tensorboard); fit does it when it ends."""
        self.run.close()

    def fit(self) -> Dict[str, Any]:
        """Train to ``steps`` (from the resumed step), then write final.pt, the last samples and the export."""
        try:
            return self._fit()
        finally:
            self.close()

    def _fit(self) -> Dict[str, Any]:
        c, run = self.c, self.run
        total = c["steps"]
        if self.start_step > total:
            raise ConfigError(f"--steps: the run is already at step {self.start_step} ({self.resumed_from}); pass "
                              f"--steps {self.start_step} or more")
        complete = self.start_step == total and os.path.isfile(run.final_path)
        if self.resumed_from is not None and not complete:
            run.truncate_metrics(self.start_step)
            self.d_watch.resume(run.read_metrics())
        run.prepare(c)
        if complete:
            self._say(f"{run.out}: the run is already complete ({self.start_step} of {total} steps, "
                      f"{run.final_path}); raise --steps to train longer")
            return {"step": self.start_step, "out": run.out, "checkpoint": run.final_path, "complete": True}
        if self.resumed_from is not None:
            self._event("resumed", checkpoint=self.resumed_from)
            self._say(f"resumed from {self.resumed_from} at step {self.start_step}")
        with torch_threads(c["threads"]):
            self._train(total)
            return self._finish(total)

    def _train(self, total: int) -> None:
        c, run, model = self.c, self.run, self.model
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, self._handle_signal)
        progress = self._progress = Progress(total, self.start_step, self.ctx.main)
        sums: Dict[str, torch.Tensor] = {}
        consecutive = 0
        t_last, step_last = time.time(), self.state.step
        t_first, step_first = None, None  # timing from the end of the first step (compilation, warm-up excluded)
        try:
            while self.state.step < total:
                if self._signal is not None:
                    raise Interrupted(self._signal)
                step = self.state.step
                x0, y = self.batches.get(step)
                seed = step_seed(c["seed"], self.ctx.rank, step, STREAM_TRAIN)
                self.generator.manual_seed(seed)
                # dropout's generator. On CPU not torch.manual_seed: it also queues a seeding of every uninitialised
                # CUDA / XPU / MTIA device, with a stack trace each (150 us a step)
                if self.ctx.device.type == "cpu":
                    torch.default_generator.manual_seed(seed + 1)
                else:
                    torch.manual_seed(seed + 1)
                self.guard.skipped_now = False
                metrics = model.train_step(x0, y, generator=self.generator)
                consecutive = consecutive + 1 if self.guard.skipped_now else 0
                if consecutive >= c["max_nonfinite"]:
                    self._recover()
                    consecutive, sums = 0, {}
                    continue
                for key, value in metrics.items():  # finite values only (no host sync): an fp16 step that the
                    # loss scaler skips (inf/NaN gradients while its scale comes down) must not make the mean NaN
                    value = value.float()
                    finite = torch.isfinite(value)
                    pair = torch.stack([torch.where(finite, value, 0.0), finite.float()])
                    sums[key] = sums[key] + pair if key in sums else pair
                done = self.state.step
                progress.update(1)
                if t_first is None:
                    t_first, step_first = time.time(), done
                elif step_first is not None and (done - step_first >= 20 or time.time() - t_first >= 10):
                    self._announce_estimate((time.time() - t_first) / (done - step_first), done - step_first)
                    step_first = None
                if done % c["log_every"] == 0 or done == total:
                    now = time.time()
                    record = {"step": done, "time": now, "it_per_s": (done - step_last) / max(now - t_last, 1e-9),
                              "lr": self.state.learning_rate,
                              "skipped_steps": self.guard.skipped_total,
                              **{k: _finite_mean(v) for k, v in sums.items()}}
                    epoch = self.batches.epoch(done)
                    if epoch is not None:
                        record["epoch"] = epoch
                    run.log(record)
                    progress.show(record, total)
                    flat = self.d_watch.update(record)
                    if flat is not None:
                        self._event("discriminator_flat", **self.d_watch.event())
                        self._say("warning: " + flat)
                    sums, t_last, step_last = {}, now, done
                if done % c["ckpt_every"] == 0 and done < total:
                    self.save_checkpoint(run.checkpoint_path(done), keep=c["keep"])
                if c["eval_every"] and done % c["eval_every"] == 0 and done < total:
                    self.score()
                if c["sample_every"] and done % c["sample_every"] == 0 and done < total:
                    self.write_samples()
        except Interrupted as stop:
            progress.close()
            path = run.checkpoint_path(self.state.step)
            self.save_checkpoint(path, keep=c["keep"])
            self._event("interrupted", signal=str(stop), checkpoint=path)
            self._say(f"stopped by {stop} at step {self.state.step}; checkpoint {path}; continue with --resume auto")
            raise
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            progress.close()
            self._progress = None

    def _finish(self, total: int) -> Dict[str, Any]:
        """final.pt, the last sample grid and curves, the export, and the 'finished' event."""
        run, model = self.run, self.model
        replicas = {}
        if self.ctx.active:  # every process must hold the same weights; say so if they do not
            replicas["replicas_equal"] = distributed.replicas_equal(model)
            if not replicas["replicas_equal"]:
                self._say(f"warning: the {self.ctx.world_size} processes ended with different weights")
        if not self.save_checkpoint(run.final_path):
            self._event("diverged", skipped=self.guard.skipped_total)
            newest = newest_valid(self.run, self._say)
            raise TrainingDiverged(
                f"the weights are not finite at step {self.state.step}, so {run.final_path} was not written (the "
                f"newest checkpoint: {newest['path'] + ' at step ' + str(newest['step']) if newest else 'none'}); try "
                f"lower --lr-g/--lr-d (or --lr), a larger --r1-gamma, or --amp bf16 instead of fp16")
        if self.c["eval_every"]:
            self.score()
        grid = self.write_samples()
        exported = export(model, os.path.join(run.out, "export")) if self.ctx.main else None
        self._event("finished", checkpoint=run.final_path, samples=grid, **replicas)
        distributed.barrier(self.ctx)
        run.close()
        self._say(f"done: {total} steps; checkpoint {run.final_path}; samples {grid}; export {exported}")
        return {"step": self.state.step, "out": run.out, "checkpoint": run.final_path,
                "samples": grid, "export": exported, "complete": True}


__all__ = ["Trainer", "TrainingDiverged", "Interrupted", "build_model", "FINAL"]
