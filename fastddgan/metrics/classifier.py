"""The domain classifier behind "FID-dom" / "IS-dom": its network, and ``DomainClassifier`` (features, logits, file).

The Inception network sees 28 x 28 digits as upscaled ImageNet photos; a classifier trained on the domain gives
features that separate its classes. It is trained by :func:`fastddgan.metrics.train_classifier`
(``classifier_training``) and scored by ``domain`` (FID-dom, IS-dom).

Network (``DomainClassifier.config``): three conv blocks, each conv 3x3 + BatchNorm + ReLU,
widths (32, 64, 128): [conv, conv, maxpool 2] [conv, conv, maxpool 2] [conv, global average pool], then
features = ReLU(Linear(128 -> feature_dim)) and logits = Linear(feature_dim -> classes). Global pooling makes it
work on any image size (28 x 28 x 1, 32 x 32 x 3, ...).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from .. import _checks
from .._io import PathLike, atomic_write, load_versioned, one_line
from ..data.convert import to_model_range
from .fid import RunningStats

FORMAT = "fastddgan.metrics.DomainClassifier"
VERSION = 1


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


def as_images(images: torch.Tensor, name: str, channels: Optional[int] = None,
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
        return to_model_range(images)
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}")
    if images.numel() and (float(images.min()) < -1.5 or float(images.max()) > 1.5):
        raise ValueError(f"{name}: expected float values in [-1, 1] (or uint8 in [0, 255]), got the range "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
    return images.float().clamp(-1, 1)


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
        x = as_images(images, "images", self.config["in_channels"], tuple(self.config["image_size"]))
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
        labels = check_labels(labels, images.shape[0], self.num_classes)
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
        state = load_versioned(path, FORMAT, VERSION, "domain classifier")  # weights_only: no code runs
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
        if not _checks.is_int(value) or not 1 <= value <= limit:
            raise ValueError(f"config: '{name}' must be an integer in [1, {limit}], got {value!r}")


def check_labels(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
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
