"""The training loop behind ``python -m fastddgan.train`` (see :mod:`fastddgan.train` for the command).

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
from typing import Any, Dict, List, Optional

import torch

from .. import checkpoint, ops
from ..data import TOY2D, load_dataset
from ..export import export
from ..models.presets import preset as preset_config
from ..sampling import sample
from ..schedule import Schedule
from . import distributed, plots
from .batches import STREAM_INIT, STREAM_TRAIN, Batches, step_seed
from .config import ConfigError, incompatible, resolve
from .run_folder import FINAL, RunFolder

SAMPLE_SEED = 1234  # the fixed seed of the sample grids, so that grids of different steps compare


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite after the allowed recoveries."""


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------- building
def dataset_info(dataset) -> Dict[str, Any]:
    return {"kind": dataset.kind, "channels": dataset.channels, "image_size": dataset.image_size,
            "num_classes": dataset.num_classes, "size": len(dataset) if dataset.kind == "image" else None}


def _network_config(c: Dict[str, Any], info: Dict[str, Any]) -> Dict[str, Any]:
    """The preset, fitted to the data (image size, channels) and to --nz."""
    net = preset_config(c["preset"])
    if info["kind"] == "image" and (net["image_size"], net["channels"]) != (info["image_size"], info["channels"]):
        net["image_size"], net["channels"] = info["image_size"], info["channels"]
        for role in ("generator", "discriminator", "denoiser"):
            net[role].update(image_size=info["image_size"], in_channels=info["channels"])
    if c["nz"] is not None:
        net["generator"]["nz"] = c["nz"]
    return net


def _schedule(c: Dict[str, Any]) -> Schedule:
    return {"ddgan": Schedule.ddgan, "linear": Schedule.linear, "cosine": Schedule.cosine}[c["schedule"]](c["T"])


def build_model(c: Dict[str, Any], info: Dict[str, Any]):
    """A DDGAN or DDPM from the resolved config (initialised from the run seed)."""
    torch.manual_seed(step_seed(c["seed"], 0, 0, STREAM_INIT))
    num_classes = info["num_classes"] if c["cond"] else None
    if c["model"] == "ddgan":
        loss_options = {k: c[k] for k in ("gp_lambda", "n_critic", "drift") if c.get(k) is not None}
        options = dict(loss=c["loss"], loss_options={**loss_options, "generator_form": c["generator_form"]},
                       r1_gamma=c["r1_gamma"], lazy_reg=c["lazy_reg"], lr_g=c["lr_g"], lr_d=c["lr_d"],
                       betas=(0.5, c["adam_beta2"]), ema_decay=c["ema_decay"],
                       total_steps=c["steps"] if c["lr_decay"] == "cosine" else None,
                       p_uncond=c["p_uncond"], amp=c["amp"], compile=c["compile"])
    else:
        options = dict(prediction=c["prediction"], p_uncond=c["p_uncond"], lr=c["lr"], ema_decay=c["ema_decay"],
                       amp=c["amp"], compile=c["compile"])
    try:
        return checkpoint.from_preset(c["model"], _network_config(c, info), _schedule(c), num_classes, **options)
    except ValueError as err:
        raise ConfigError(f"--preset {c['preset']}: cannot build it for this data ({err})") from None


def _optimizers(model) -> List[torch.optim.Optimizer]:
    return list(checkpoint.optimizers(model).values())


def _stretch_lr_schedules(model, total_steps: int) -> None:
    """After resuming with a different --steps, make the cosine decay end at the new last step: set T_max and the
    current learning rates to the closed form eta_min + (base - eta_min) (1 + cos(pi step / T_max)) / 2, from
    which the scheduler's recursive update continues exactly."""
    for scheduler in getattr(model, "schedulers", []):
        if scheduler.T_max == total_steps:
            continue
        scheduler.T_max = total_steps
        e = min(scheduler.last_epoch, total_steps)
        lrs = [scheduler.eta_min + (base - scheduler.eta_min) * (1 + math.cos(math.pi * e / total_steps)) / 2
               for base in scheduler.base_lrs]
        for group, lr in zip(scheduler.optimizer.param_groups, lrs):
            group["lr"] = lr
        scheduler._last_lr = lrs


# ---------------------------------------------------------------------------------------------- guards
class NonFiniteGuard:
    """Optimiser pre-step hooks that skip a step whose gradients are not finite (its gradients are dropped, so
    Adam leaves those parameters and their moments untouched). One host sync per optimiser step."""

    def __init__(self, optimizers: List[torch.optim.Optimizer]):
        self.skipped_total = 0
        self.skipped_now = False
        for opt in optimizers:
            opt.register_step_pre_hook(self._hook)

    def _hook(self, opt, args, kwargs):
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        norms = torch.stack(torch._foreach_norm(grads))
        if not bool(torch.isfinite(norms).all()):
            for group in opt.param_groups:
                for p in group["params"]:
                    p.grad = None
            self.skipped_total += 1
            self.skipped_now = True


def _all_finite(model) -> bool:
    tensors = [p.detach() for p in model.parameters() if p.dtype.is_floating_point]
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())


# ---------------------------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, raw: Dict[str, Any]):
        self.ctx = distributed.init(raw.get("device"))
        ops.select(self.ctx.device)  # a FASTDDGAN_BACKEND that cannot run here: one line now, not at the first step
        if not raw.get("dataset"):
            raise ConfigError("--dataset: required (on the command line or in --config)")
        if str(raw["dataset"]).startswith("folder:") and raw.get("image_size") is None:
            raise ConfigError(f"--image-size: required for --dataset {raw['dataset']} (the side of the square "
                              f"images, e.g. 64)")
        self.dataset = load_dataset(raw["dataset"], data_dir=raw["data_dir"], image_size=raw["image_size"],
                                    channels=raw["channels"])
        self.info = {**dataset_info(self.dataset), "world_size": self.ctx.world_size}
        self.c = c = resolve(raw, self.info)
        c["world_size"] = self.ctx.world_size
        self.run = RunFolder(c["out"], active=self.ctx.main)
        removed = self.run.lock()  # released by fit's end, by close(), or by the process's end (even kill -9)
        try:
            if removed:
                self._say(f"removed {_plural(len(removed), 'temporary checkpoint file')} left by a killed run")
            self._build()
        except BaseException:
            self.run.close()
            raise

    def _build(self) -> None:
        c = self.c
        state = self._checkpoint_to_resume()
        self.model = build_model(c, self.info).to(self.ctx.device)
        if state is not None:
            try:
                checkpoint.restore(self.model, state)
            except ValueError as err:
                raise ConfigError("--resume: " + str(err).removeprefix("path: ")) from None
            _stretch_lr_schedules(self.model, c["steps"])
        self.start_step = self.model.step
        optimizers = _optimizers(self.model)
        if self.ctx.active:
            distributed.broadcast_module(self.model)
            self.model.gradient_sync = distributed.gradient_sync(self.ctx.world_size)
        self.guard = NonFiniteGuard(optimizers)
        self.generator = torch.Generator(self.ctx.device)
        self.batches = Batches(self.dataset, c["batch_size"], self.ctx.device, c["seed"], self.ctx.rank,
                               self.ctx.world_size, labels=c["cond"], hflip=c["hflip"],
                               num_workers=c["num_workers"], start_step=self.start_step, total_steps=c["steps"])
        # recoveries so far (kept in the checkpoints: their learning rates are already 0.5 ** recoveries of --lr-*)
        self.recoveries = int(state.get("extra", {}).get("recoveries", 0)) if state is not None else 0
        self._signal = None
        self.resumed_from = state.get("path") if state is not None else None

    # ------------------------------------------------------------------ resuming
    def _checkpoint_to_resume(self) -> Optional[Dict[str, Any]]:
        c, run = self.c, self.run
        if c["resume"] is None:
            if run.holds_run():
                raise ConfigError(f"--out: {run.out} already holds a run (config.json / checkpoints); pass "
                                  f"--resume auto to continue it, or choose another --out")
            return None
        if c["resume"] == "auto":
            state = self._newest_valid()
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
               if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "recoveries" else 1)}
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

    def _newest_valid(self) -> Optional[Dict[str, Any]]:
        for _, path in self.run.list_checkpoints():
            try:
                state = checkpoint.read(path)
            except ValueError as err:
                self._say(f"warning: skipping unreadable checkpoint {path} ({err})")
                continue
            state["path"] = path
            return state
        return None

    # ------------------------------------------------------------------ output
    def _say(self, text: str) -> None:
        if self.ctx.main:
            print(text, file=sys.stderr if text.startswith("warning") else sys.stdout, flush=True)

    def _event(self, event: str, **fields) -> None:
        self.run.log({"event": event, "step": self.model.step, "time": time.time(), **fields})

    def save_checkpoint(self, path: str, keep: Optional[int] = None) -> bool:
        """Write a checkpoint unless the weights are not finite (never save a NaN checkpoint). ``keep``: a periodic
        checkpoint; the older ones beyond the newest ``keep`` are removed, as many as possible before it is written
        (see RunFolder.make_room). A full disk raises checkpoint.DiskFullError."""
        if not _all_finite(self.model):
            self._say(f"warning: weights not finite at step {self.model.step}; checkpoint {path} not written")
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
        """What is trained, in a few words: 'DDGAN js, T=4 on ring8'."""
        c = self.c
        what = (f"DDGAN {c['loss']}, T={c['T']}" if c["model"] == "ddgan" else
                f"DDPM {c['prediction']}, T={c['T']}")
        return f"{what}{', class-conditional' if c['cond'] else ''} on {c['dataset']} (preset {c['preset']})"

    def write_samples(self) -> Optional[str]:
        """samples/step-N.png from the EMA network and a fixed seed, captioned (2-D data: a scatter plot against
        the data, with the exact mixture metrics in the title), then the training curves (curves.png)."""
        if not self.ctx.main:
            return None
        c, n, step = self.c, self.c["sample_n"], self.model.step
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
            image = plots.sample_grid((x.float() + 1) / 2, rows, title + [how])
        path = self.run.save_png(image, self.run.sample_name(step))
        self.write_curves()
        return path

    def write_curves(self) -> Optional[str]:
        if not self.ctx.main:
            return None
        image = plots.training_curves(self.run.read_metrics(), f"{self.describe()}: training curves")
        return None if image is None else self.run.save_png(image, "curves.png")

    def _announce_estimate(self, seconds_per_step: float, measured: int) -> None:
        """One early line: time per step, the expected end and the checkpoint size, so that a run that would
        take days on this machine is noticed in its first minute."""
        c, left = self.c, self.c["steps"] - self.model.step
        size = checkpoint.estimated_size(self.model)
        files = min(c["keep"], c["steps"] // c["ckpt_every"]) + 1
        self._say(f"speed: {seconds_per_step:.3g} s/step over {measured} steps on {self.ctx.device.type} "
                  f"({_plural(torch.get_num_threads(), 'thread')}) -> about {_duration(left * seconds_per_step)} for the "
                  f"{left} steps left; checkpoints about {size / 1e6:.0f} MB each (up to {files} kept, "
                  f"{files * size / 1e6:.0f} MB)")
        self._event("estimate", seconds_per_step=seconds_per_step, eta_s=left * seconds_per_step,
                    checkpoint_bytes=size)
        if self.ctx.device.type == "cpu" and self.info["kind"] == "image" and left * seconds_per_step > 2 * 3600:
            self._say(f"warning: this is a CPU and the {c['preset']!r} networks are sized for a GPU; for a run "
                      f"in minutes choose a smaller --preset (tiny) or fewer --steps, or train on a GPU")

    # ------------------------------------------------------------------ the loop
    def _recover(self) -> None:
        """Reload the newest valid checkpoint with half the learning rate, or stop."""
        c = self.c
        state = self._newest_valid() if self.recoveries < 2 else None
        if state is None:
            self._event("diverged", skipped=self.guard.skipped_total)
            raise TrainingDiverged(
                f"the loss was not finite for {c['max_nonfinite']} steps in a row at step {self.model.step}"
                + (" after 2 restarts with halved learning rates" if self.recoveries else
                   " and there is no checkpoint to go back to")
                + "; try lower --lr-g/--lr-d (or --lr), a larger --r1-gamma, or --amp bf16 instead of fp16")
        checkpoint.restore(self.model, state)
        self.recoveries += 1
        # the checkpoint's learning rates are 0.5 ** (its recoveries) of the configured ones: halve them as often as
        # it takes to reach 0.5 ** self.recoveries (restoring alone would replay the first recovery every time)
        scale = 0.5 ** max(self.recoveries - int(state.get("extra", {}).get("recoveries", 0)), 0)
        for opt in _optimizers(self.model):
            for group in opt.param_groups:
                group["lr"] *= scale
        for scheduler in getattr(self.model, "schedulers", []):
            scheduler.base_lrs = [lr * scale for lr in scheduler.base_lrs]
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
        self.batches.restart(self.model.step)
        self._event("recovered", checkpoint=state["path"], lr_scale=0.5**self.recoveries)
        self._say(f"warning: non-finite loss for {c['max_nonfinite']} steps; went back to {state['path']} "
                  f"with the learning rates at {0.5**self.recoveries:g} x the configured ones")

    def _handle_signal(self, signum, frame) -> None:
        if self._signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self._signal = signum
        self._say(f"\n{signal.Signals(signum).name}: finishing step {self.model.step + 1}, writing a checkpoint, then "
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
        run.prepare(c)
        if complete:
            self._say(f"{run.out}: the run is already complete ({self.start_step} of {total} steps, "
                      f"{run.final_path}); raise --steps to train longer")
            return {"step": self.start_step, "out": run.out, "checkpoint": run.final_path, "complete": True}
        if self.resumed_from is not None:
            self._event("resumed", checkpoint=self.resumed_from)
            self._say(f"resumed from {self.resumed_from} at step {self.start_step}")
        threads_before = torch.get_num_threads()
        if c["threads"]:
            torch.set_num_threads(c["threads"])
        try:
            self._train(total)
            return self._finish(total)
        finally:
            torch.set_num_threads(threads_before)

    def _train(self, total: int) -> None:
        c, run, model = self.c, self.run, self.model
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, self._handle_signal)
        progress = _Progress(total, self.start_step, self.ctx.main)
        sums: Dict[str, torch.Tensor] = {}
        count, consecutive = 0, 0
        t_last, step_last = time.time(), model.step
        t_first, step_first = None, None  # timing from the end of the first step (compilation, warm-up excluded)
        try:
            while model.step < total:
                if self._signal is not None:
                    raise Interrupted(self._signal)
                step = model.step
                x0, y = self.batches.get(step)
                seed = step_seed(c["seed"], self.ctx.rank, step, STREAM_TRAIN)
                self.generator.manual_seed(seed)
                torch.manual_seed(seed + 1)  # dropout
                self.guard.skipped_now = False
                metrics = model.train_step(x0, y, generator=self.generator)
                consecutive = consecutive + 1 if self.guard.skipped_now else 0
                if consecutive >= c["max_nonfinite"]:
                    self._recover()
                    consecutive, sums, count = 0, {}, 0
                    continue
                for key, value in metrics.items():
                    sums[key] = sums[key] + value.float() if key in sums else value.float()
                count += 1
                done = model.step
                progress.update(1)
                if t_first is None:
                    t_first, step_first = time.time(), done
                elif step_first is not None and (done - step_first >= 20 or time.time() - t_first >= 10):
                    self._announce_estimate((time.time() - t_first) / (done - step_first), done - step_first)
                    step_first = None
                if done % c["log_every"] == 0 or done == total:
                    now = time.time()
                    record = {"step": done, "time": now, "it_per_s": (done - step_last) / max(now - t_last, 1e-9),
                              "lr": _optimizers(model)[0].param_groups[0]["lr"],
                              "skipped_steps": self.guard.skipped_total,
                              **{k: float(v) / count for k, v in sums.items()}}
                    epoch = self.batches.epoch(done)
                    if epoch is not None:
                        record["epoch"] = epoch
                    run.log(record)
                    progress.show(record, total)
                    sums, count, t_last, step_last = {}, 0, now, done
                if done % c["ckpt_every"] == 0 and done < total:
                    self.save_checkpoint(run.checkpoint_path(done), keep=c["keep"])
                if c["sample_every"] and done % c["sample_every"] == 0 and done < total:
                    self.write_samples()
        except Interrupted as stop:
            progress.close()
            path = run.checkpoint_path(model.step)
            self.save_checkpoint(path, keep=c["keep"])
            self._event("interrupted", signal=str(stop), checkpoint=path)
            self._say(f"stopped by {stop} at step {model.step}; checkpoint {path}; continue with --resume auto")
            raise
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            progress.close()

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
            newest = self._newest_valid()
            raise TrainingDiverged(
                f"the weights are not finite at step {model.step}, so {run.final_path} was not written (the newest "
                f"checkpoint: {newest['path'] + ' at step ' + str(newest['step']) if newest else 'none'}); try "
                f"lower --lr-g/--lr-d (or --lr), a larger --r1-gamma, or --amp bf16 instead of fp16")
        grid = self.write_samples()
        exported = export(model, os.path.join(run.out, "export")) if self.ctx.main else None
        self._event("finished", checkpoint=run.final_path, samples=grid, **replicas)
        distributed.barrier(self.ctx)
        run.close()
        self._say(f"done: {total} steps; checkpoint {run.final_path}; samples {grid}; export {exported}")
        return {"step": model.step, "out": run.out, "checkpoint": run.final_path,
                "samples": grid, "export": exported, "complete": True}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    if not 0 <= seconds < math.inf:  # NaN or infinite (no speed measured yet)
        return "unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days" if seconds < 1e9 else f"{seconds / 86400:.2g} days"


class _Progress:
    """tqdm on a terminal (process 0); plain log lines otherwise."""

    def __init__(self, total: int, initial: int, active: bool):
        self.bar = None
        self.active = active
        if active and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, dynamic_ncols=True, unit="it")
            except ImportError:
                self.bar = None

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def show(self, record: Dict[str, Any], total: int) -> None:
        losses = {k: v for k, v in record.items() if k.startswith(("loss", "divergence", "r1", "gp"))}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        elif self.active:
            eta = (total - record["step"]) / max(record["it_per_s"], 1e-9)
            text = " | ".join(f"{k} {v:.4g}" for k, v in losses.items())
            print(f"step {record['step']}/{total} | {text} | {record['it_per_s']:.1f} it/s | eta {_duration(eta)}",
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["Trainer", "TrainingDiverged", "Interrupted", "build_model", "FINAL"]
