"""Standard FID / IS features: the TF Inception-v3 "2015-12-05" graph as ported by torch-fidelity.

``InceptionMetrics.features(images)`` runs torch-fidelity's ``FeatureExtractorInceptionV3`` and returns the 2048-d
pool3 features (for FID) and the 1008-way logits without the fc bias (``logits_unbiased``, for IS), as in
torch-fidelity's own FID / IS. Images in [-1, 1] are quantised like a saved PNG, u = round(255 (x + 1) / 2);
grayscale is repeated to 3 channels; the network resizes to 299 x 299 with torch-fidelity's TF1-compatible
bilinear interpolation (``interpolate_bilinear_2d_like_tensorflow1x``), the resize of the original TF FID code.

    IS = exp(E_x KL(p(y|x) || p(y))), averaged over 10 splits

Weights (``weights-inception-2015-12-05-6726825d.pth``) are looked up, in order, at ``weights_path``, at
``$FASTDDGAN_INCEPTION_WEIGHTS``, and in torch.hub's cache (``$TORCH_HOME/hub/checkpoints/``, where torch-fidelity
and torchmetrics download it). Nothing is downloaded unless ``download=True``; a missing file raises
:class:`InceptionWeightsNotFound`. The file is read with ``weights_only=True`` (no code in it runs) and must hold
the network's state dict; otherwise :class:`InceptionWeightsInvalid`.
"""

from __future__ import annotations

import io
import os
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from .. import _checks
from .._io import load_tensors, one_line
from ..data.convert import to_uint8 as data_to_uint8

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
WEIGHTS_ENV = "FASTDDGAN_INCEPTION_WEIGHTS"
FEATURE_DIM = 2048
NUM_LOGITS = 1008


class InceptionWeightsNotFound(FileNotFoundError):
    """The TF-Inception (2015-12-05) weights file is not on this machine."""


class InceptionWeightsInvalid(ValueError):
    """The weights file cannot be loaded safely (``weights_only=True``), or it does not hold the network's
    weights."""


def default_weights_path() -> str:
    """Where torch-fidelity / torchmetrics keep the downloaded weights: torch.hub's checkpoint folder."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", WEIGHTS_FILE)


def _not_found(looked: str) -> InceptionWeightsNotFound:
    return InceptionWeightsNotFound(
        f"Inception weights not found ({looked}). FID / IS need torch-fidelity's port of the TF Inception-v3 "
        f"2015-12-05 graph, file {WEIGHTS_FILE}. Put it at {default_weights_path()} "
        f"(torch.hub's cache, $TORCH_HOME/hub/checkpoints/), or pass its path with --inception-weights PATH "
        f"(weights_path=) or ${WEIGHTS_ENV}=PATH. Download it on a machine with network access from "
        f"{WEIGHTS_URL} (or pass download=True here).")


def _resolve(weights_path: Optional[Union[str, os.PathLike]], download: bool) -> Tuple[str, str]:
    """(path, where it came from: the argument, the environment variable or torch.hub's cache)."""
    if weights_path is not None:
        path = os.fspath(weights_path)
        if not os.path.isfile(path):
            raise _not_found(f"weights_path {path!r} is not a file")
        return path, "--inception-weights (weights_path)"
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if not os.path.isfile(env):
            raise _not_found(f"${WEIGHTS_ENV}={env!r} is not a file")
        return env, f"${WEIGHTS_ENV}"
    path = default_weights_path()
    if not os.path.isfile(path):
        if not download:
            raise _not_found(f"not in torch.hub's cache {os.path.dirname(path)!r}, and neither weights_path nor "
                             f"${WEIGHTS_ENV} given")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, path)
    return path, "Inception weights in torch.hub's cache"


def resolve_weights(weights_path: Optional[Union[str, os.PathLike]] = None, download: bool = False) -> str:
    """The weights file to load: ``weights_path``, else ``$FASTDDGAN_INCEPTION_WEIGHTS``, else torch.hub's cache
    (downloaded there from torch-fidelity's release only when ``download=True``)."""
    return _resolve(weights_path, download)[0]


def load_weights(path: Union[str, os.PathLike], source: str = "weights_path") -> Dict[str, torch.Tensor]:
    """The state dict in the weights file at ``path``, read with ``weights_only=True``: a file whose pickle would
    run code, an empty or corrupt file, or anything but a dict of tensors raises :class:`InceptionWeightsInvalid`
    (one line, naming ``source``: the argument or variable that gave the path)."""
    path = os.fspath(path)
    try:
        state = load_tensors(path)
    except ValueError as err:
        raise InceptionWeightsInvalid(f"{source}: cannot use {path!r} as the Inception weights: {err}") from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InceptionWeightsInvalid(f"{source}: {path!r} does not hold a state dict of tensors (expected "
                                      f"torch-fidelity's {WEIGHTS_FILE})")
    return state


def _extractor(state: Dict[str, torch.Tensor], path: str, source: str):
    """torch-fidelity's FeatureExtractorInceptionV3 with the weights ``state``."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(f"InceptionMetrics needs torch-fidelity (pip install torch-fidelity): {err}") from err
    # The library takes a file and unpickles it with weights_only=False: give it our own pickle of the tensors
    # already loaded safely, never the user's file.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                           feature_extractor_weights_path=buffer)
    except RuntimeError as err:  # load_state_dict: missing or unexpected keys, wrong shapes
        raise InceptionWeightsInvalid(f"{source}: {path!r} does not hold the Inception-v3 weights of "
                                      f"{WEIGHTS_FILE} ({one_line(str(err), 300)})") from None


def to_uint8(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """(N, 3, H, W) uint8 from (N, 1 or 3, H, W) images: float in [-1, 1] -> round(255 (x + 1) / 2), clamped to
    [0, 255] like a saved PNG; uint8 images pass through; 1 channel is repeated to 3."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected an (N, 1 or 3, H, W) batch, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        u = images
    elif images.is_floating_point():
        if images.numel() and (float(images.min()) < -1.5 or float(images.max()) > 1.5):
            raise ValueError(f"{name}: expected float values in [-1, 1] (or uint8 in [0, 255]), got the range "
                             f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
        u = data_to_uint8(images)
    else:
        raise TypeError(f"{name}: expected a float tensor in [-1, 1] or uint8, got dtype {images.dtype}")
    return u.expand(-1, 3, -1, -1) if u.shape[1] == 1 else u


class InceptionMetrics:
    """TF-Inception features for FID / IS through torch-fidelity's ``FeatureExtractorInceptionV3``.

    ``features(images)`` -> (pool3 features (N, 2048) float64, logits without fc bias (N, 1008) float64), both on
    the CPU. Use :func:`fastddgan.metrics.feature_stats` / ``RunningStats`` and :func:`inception_score` on them.
    """

    def __init__(self, weights_path: Optional[Union[str, os.PathLike]] = None,
                 device: Optional[Union[str, torch.device]] = None, download: bool = False,
                 batch_size: int = 100) -> None:
        _checks.integer("batch_size", batch_size, 1)
        self.weights_path, source = _resolve(weights_path, download)   # before the library could try to download
        state = load_weights(self.weights_path, source)
        self.device = torch.device(_checks.default_device(device))
        self.batch_size = batch_size
        self.net = _extractor(state, self.weights_path, source).to(self.device)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(pool3 (N, 2048), logits_unbiased (N, 1008)), float64 on the CPU, of images (N, 1 or 3, H, W) in
        [-1, 1] (or uint8), run in chunks of ``batch_size``."""
        u = to_uint8(images)
        feats, logits = [], []
        for i in range(0, u.shape[0], self.batch_size):
            f, lg = self.net(u[i:i + self.batch_size].to(self.device).contiguous())
            feats.append(f.to("cpu", torch.float64))
            logits.append(lg.to("cpu", torch.float64))
        if not feats:
            return torch.zeros(0, FEATURE_DIM, dtype=torch.float64), torch.zeros(0, NUM_LOGITS, dtype=torch.float64)
        return torch.cat(feats), torch.cat(logits)


def inception_score(logits: Union[torch.Tensor, np.ndarray], splits: int = 10, shuffle: bool = True,
                    seed: int = 2020) -> Tuple[float, float]:
    """(mean, std) over ``splits`` of exp(mean_i KL(p(y|x_i) || p_split(y))), p = softmax(logits), in float64.

    The same computation as torch-fidelity's IS: rows shuffled with numpy's RandomState(seed) (2020 is
    torch-fidelity's default), split at i N // splits, population std over the splits. For Inception use the
    logits without the fc bias (what :meth:`InceptionMetrics.features` returns).
    """
    if isinstance(logits, np.ndarray):
        logits = torch.from_numpy(logits)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits: expected a torch.Tensor or numpy.ndarray, got {type(logits).__name__}")
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits: expected an (N, classes >= 2) array, got shape {tuple(logits.shape)}")
    _checks.integer("splits", splits, 1)
    n = logits.shape[0]
    if n < splits:
        raise ValueError(f"logits: expected at least splits={splits} rows, got {n}")
    x = logits.detach().to("cpu", torch.float64)
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    log_p = x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lp = log_p[i * n // splits:(i + 1) * n // splits]
        log_marginal = torch.logsumexp(lp, dim=0) - np.log(lp.shape[0])
        kl = (lp.exp() * (lp - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
