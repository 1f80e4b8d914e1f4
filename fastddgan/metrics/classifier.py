"""Domain metrics from a small CNN classifier trained on the data set itself ("FID-dom", "IS-dom").

The Inception network sees 28 x 28 digits as upscaled ImageNet photos; a classifier trained on the domain gives
features that separate its classes. FID-dom is the Fréchet distance between Gaussians fitted to the classifier's
penultimate features (the same formula as FID, :func:`fastddgan.metrics.frechet_distance`); IS-dom is
exp(E_x KL(p(y|x) || p(y))) with the classifier's class probabilities (at most the number of classes). These are
not FID / IS and are never reported under those names: values depend on the classifier, so compare only numbers
computed with the same saved classifier file.

Network (``DomainClassifier.config``): three conv blocks, each conv 3x3 + BatchNorm + ReLU,
widths (32, 64, 128): [conv, conv, maxpool 2] [conv, conv, maxpool 2] [conv, global average pool], then
features = ReLU(Linear(128 -> feature_dim)) and logits = Linear(feature_dim -> classes). Global pooling makes it
work on any image size (28 x 28 x 1, 32 x 32 x 3, ...).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._io import PathLike, atomic_write, load_tensors, one_line
from .fid import ArrayLike, RunningStats, feature_stats, frechet_distance
from .inception import inception_score

FORMAT = "fastddgan.metrics.DomainClassifier"
VERSION = 1
FID_DOM = "FID-dom"
IS_DOM = "IS-dom"


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Net(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int], feature_dim: int) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(_conv(in_channels, w1), _conv(w1, w1), nn.MaxPool2d(2),
                                  _conv(w1, w2), _conv(w2, w2), nn.MaxPool2d(2),
                                  _conv(w2, w3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature = nn.Sequential(nn.Linear(w3, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.feature(self.body(x))
        return f, self.head(f)


def _as_images(images: torch.Tensor, name: str, channels: Optional[int] = None,
               size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """float32 images in [-1, 1] from uint8 [0, 255] (x / 127.5 - 1) or float [-1, 1] (N, C, H, W) tensors."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{name}: expected an (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if channels is not None and images.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s) like the classifier's training data, "
                         f"got shape {tuple(images.shape)}")
    if size is not None and tuple(images.shape[2:]) != tuple(size):
        raise ValueError(f"{name}: expected {size[0]}x{size[1]} images like the classifier's training data, "
                         f"got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}")
    if images.numel() and (float(images.min()) < -1.5 or float(images.max()) > 1.5):
        raise ValueError(f"{name}: expected float values in [-1, 1] (or uint8 in [0, 255]), got the range "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
    return images.float().clamp(-1, 1)


def _shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by a random integer offset in [-pad, pad]^2 (edges replicated)."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    rows = (torch.arange(h) + dy).to(x.device)
    cols = (torch.arange(w) + dx).to(x.device)
    idx = torch.arange(n, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class DomainClassifier:
    """A trained domain classifier: ``features`` (penultimate layer, float64) and ``logits`` of images in
    [-1, 1], plus what it was trained on (``dataset``) and its accuracy on the held-out split
    (``heldout_accuracy``). Build with :func:`train_classifier`, keep with ``save`` / ``DomainClassifier.load``."""

    def __init__(self, config: Dict[str, Any], state_dict: Optional[Dict[str, torch.Tensor]] = None,
                 dataset: str = "", heldout_accuracy: Optional[float] = None,
                 info: Optional[Dict[str, Any]] = None, device: Optional[Union[str, torch.device]] = None) -> None:
        self.config = dict(config)
        self.net = _Net(config["in_channels"], config["num_classes"], config["widths"], config["feature_dim"])
        if state_dict is not None:
            self.net.load_state_dict(state_dict)
        self.device = torch.device(device if device is not None else "cpu")
        self.net.to(self.device).eval()
        self.dataset = dataset
        self.heldout_accuracy = heldout_accuracy
        self.info = dict(info or {})

    @property
    def num_classes(self) -> int:
        return int(self.config["num_classes"])

    @property
    def feature_dim(self) -> int:
        return int(self.config["feature_dim"])

    def to(self, device: Union[str, torch.device]) -> "DomainClassifier":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    @torch.no_grad()
    def _run(self, images: torch.Tensor, batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        x = _as_images(images, "images", self.config["in_channels"], tuple(self.config["image_size"]))
        self.net.eval()
        feats, logits = [], []
        for i in range(0, x.shape[0], batch_size):
            f, lg = self.net(x[i:i + batch_size].to(self.device))
            feats.append(f.to("cpu", torch.float64))
            logits.append(lg.to("cpu", torch.float64))
        if not feats:
            return (torch.zeros(0, self.feature_dim, dtype=torch.float64),
                    torch.zeros(0, self.num_classes, dtype=torch.float64))
        return torch.cat(feats), torch.cat(logits)

    def features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Penultimate features (N, feature_dim), float64 on the CPU, of images (N, C, H, W) in [-1, 1] or uint8."""
        return self._run(images, batch_size)[0]

    def logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Class logits (N, num_classes), float64 on the CPU."""
        return self._run(images, batch_size)[1]

    def features_and_logits(self, images: torch.Tensor, batch_size: int = 500) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._run(images, batch_size)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of ``images`` classified as ``labels``."""
        labels = _labels(labels, images.shape[0], self.num_classes)
        return float((self.logits(images).argmax(dim=1) == labels).double().mean())

    def stats(self, images: torch.Tensor, batch_size: int = 500) -> Tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the features of ``images``, accumulated per batch (reference statistics for FID-dom)."""
        running = RunningStats()
        for i in range(0, images.shape[0], batch_size):
            running.update(self.features(images[i:i + batch_size], batch_size))
        return running.compute()

    def save(self, path: PathLike) -> None:
        """Write config, weights, data set name and held-out accuracy to ``path`` atomically."""
        state = {"format": FORMAT, "version": VERSION, "config": self.config,
                 "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                 "dataset": self.dataset, "heldout_accuracy": self.heldout_accuracy, "info": self.info}
        atomic_write(path, lambda f: torch.save(state, f))

    @classmethod
    def load(cls, path: PathLike, device: Optional[Union[str, torch.device]] = None) -> "DomainClassifier":
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no classifier file at {path!r}")
        try:
            state = load_tensors(path)  # weights_only: no code in the file runs
        except ValueError as err:
            raise ValueError(f"path: {path!r} is not a fastddgan domain classifier: {err}") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"path: {path!r} is not a fastddgan domain classifier (no 'format': {FORMAT!r})")
        if state.get("version") != VERSION:
            raise ValueError(f"path: {path!r} has classifier version {state.get('version')!r}; this fastddgan "
                             f"reads version {VERSION}")
        try:
            _check_config(state["config"])
            return cls(state["config"], state["state_dict"], state.get("dataset", ""), state.get("heldout_accuracy"),
                       state.get("info"), device)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            why = f"missing {err}" if isinstance(err, KeyError) else one_line(str(err), 300)
            raise ValueError(f"path: {path!r} is a malformed fastddgan domain classifier ({type(err).__name__}: "
                             f"{why})") from None


# bounds on a saved classifier's config, checked before the network is built (a crafted file must not make it
# allocate gigabytes)
_CONFIG_LIMITS = {"in_channels": 64, "num_classes": 100_000, "feature_dim": 65_536}
_MAX_WIDTH = 4096


def _check_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict, got {type(config).__name__}")
    widths = config.get("widths")
    if not isinstance(widths, (list, tuple)) or len(widths) != 3:
        raise ValueError(f"config: 'widths' must be three integers, got {widths!r}")
    for name, value in [*((k, config.get(k)) for k in _CONFIG_LIMITS), *(("widths", w) for w in widths)]:
        limit = _CONFIG_LIMITS.get(name, _MAX_WIDTH)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise ValueError(f"config: '{name}' must be an integer in [1, {limit}], got {value!r}")


def _labels(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a torch.Tensor, got {type(labels).__name__}")
    if labels.shape != (n,) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected an integer tensor of shape ({n},), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    labels = labels.long().cpu()
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels: expected values in [0, {num_classes}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    return labels


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int = 10,
                     batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 1e-4, heldout: float = 0.1,
                     augment: int = 2, widths: Sequence[int] = (32, 64, 128), feature_dim: int = 128,
                     seed: int = 0, device: Optional[Union[str, torch.device]] = None, dataset: str = "",
                     verbose: bool = False) -> DomainClassifier:
    """Train a :class:`DomainClassifier` on ``images`` (N, C, H, W) (uint8 [0, 255] or float [-1, 1]) and
    integer ``labels`` (N,).

    A random share ``heldout`` of the images (stratified by nothing, drawn with ``seed``) is kept out of training
    and gives ``heldout_accuracy``. AdamW (``lr``, ``weight_decay``) with a cosine decay over ``epochs``; inputs
    translated by up to ``augment`` pixels (0: off). The same ``seed`` gives the same classifier on one machine
    (the global RNG is left untouched). The defaults take about 40 s on 2 CPU cores for 5,000 28x28 digits and
    reach 98-99% on a 10% held-out split of the real mnist5k digits.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("feature_dim", feature_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if isinstance(augment, bool) or not isinstance(augment, int) or augment < 0:
        raise ValueError(f"augment: expected an integer >= 0 (pixels), got {augment!r}")
    if not 0.0 <= heldout < 1.0:
        raise ValueError(f"heldout: expected a share in [0, 1), got {heldout!r}")
    if len(widths) != 3 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths: expected three integers >= 1, got {widths!r}")
    x = _as_images(images, "images")
    y = _labels(labels, x.shape[0], num_classes)
    device = torch.device(device if device is not None else "cpu")

    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    n_held = int(round(heldout * x.shape[0]))
    held, train = perm[:n_held], perm[n_held:]
    if train.numel() < 2:
        raise ValueError(f"images: expected at least 2 training images after the held-out split, got "
                         f"{train.numel()}")
    config = {"in_channels": int(x.shape[1]), "image_size": [int(x.shape[2]), int(x.shape[3])],
              "num_classes": num_classes, "widths": [int(w) for w in widths], "feature_dim": feature_dim}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = DomainClassifier(config, dataset=dataset, device=device)
    net = clf.net
    steps_per_epoch = math.ceil(train.numel() / batch_size)
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    xt, yt = x[train], y[train]
    start = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(xt.shape[0], generator=gen)
        for i in range(0, order.numel(), batch_size):
            idx = order[i:i + batch_size]
            if idx.numel() < 2:            # BatchNorm needs two samples
                continue
            xb = xt[idx]
            if augment:
                xb = _shift(xb, augment, gen)
            _, logits = net(xb.to(device))
            loss = F.cross_entropy(logits, yt[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {float(loss.detach()):.4f} ({time.perf_counter() - start:.1f} s)")
    net.eval()
    clf.info = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                "augment": augment, "seed": seed, "n_train": int(train.numel()), "n_heldout": int(n_held),
                "train_seconds": round(time.perf_counter() - start, 2)}
    if n_held:
        clf.heldout_accuracy = clf.accuracy(x[held], y[held])
    return clf


def _real_stats(stats_real) -> Tuple[ArrayLike, ArrayLike]:
    if not isinstance(stats_real, (tuple, list)) or len(stats_real) not in (2, 3):
        raise TypeError("stats_real: expected (mu, sigma) or load_stats()'s (mu, sigma, meta), got "
                        f"{type(stats_real).__name__}")
    return stats_real[0], stats_real[1]


def fid_dom(features_fake: ArrayLike, stats_real) -> float:
    """FID-dom: Fréchet distance between the classifier features of generated images (N, d) and the real
    statistics ``stats_real`` = (mu, sigma) of the same classifier (not comparable with Inception FID)."""
    mu, sigma = feature_stats(features_fake)
    mu_r, sigma_r = _real_stats(stats_real)
    return frechet_distance(mu, sigma, mu_r, sigma_r)


def is_dom(logits: ArrayLike, splits: int = 10) -> Tuple[float, float]:
    """IS-dom: (mean, std) of the Inception-Score formula over ``splits`` with the domain classifier's logits
    (at most its number of classes; not comparable with Inception IS)."""
    return inception_score(logits, splits=splits)


def domain_metrics(classifier: DomainClassifier, images: torch.Tensor, stats_real, splits: int = 10,
                   batch_size: int = 500) -> Dict[str, float]:
    """{"FID-dom", "IS-dom", "IS-dom-std"} of generated ``images`` against the real statistics of
    ``classifier``'s features."""
    feats, logits = classifier.features_and_logits(images, batch_size)
    mean, std = is_dom(logits, splits)
    return {FID_DOM: fid_dom(feats, stats_real), IS_DOM: mean, IS_DOM + "-std": std}
