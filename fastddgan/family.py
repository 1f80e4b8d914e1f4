"""The model protocol: what sampling, checkpoints and export need of a model family (DDGAN, DDPM, ...), and the
registry that rebuilds a model from its family's name.

A family is a class that

* names itself (``kind``, the name checkpoints store) and the preset networks it is built from (``roles``), and
  builds itself from them (``from_networks``) with its default schedule (``default_schedule``): checkpoints and
  exports rebuild it through :func:`family`;
* says how it samples (``sampling_setup(T, ddim, variance)``, a :class:`SamplingSetup`: the sampler function, the
  schedule of the T steps, the sampler's options and a denoiser factory); the number of Philox noise streams per
  sample follows from the sampler (:attr:`SamplingSetup.streams`);
* gives the network it samples with (``sampling_network()``: the EMA copy) and loads exported weights into it
  (``load_sampling_weights``);
* keeps what training adds to the weights in ``train_state`` (:class:`fastddgan.train_state.TrainState`:
  optimisers, LR schedules, loss scalers, step), which checkpoints serialise through its ``state_dict``.

Sampling, checkpoints and export use these and nothing else of a model, so they import no family: a family's
module registers its class (``@register``) when it is imported, and the built-in families are imported on the first
look-up by name. The samplers' shared signature is described in :mod:`fastddgan.sampling`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import nn

from .schedule import Schedule

# the families of this package, imported on the first look-up by name (each registers itself)
BUILTIN_FAMILIES = ("fastddgan.ddgan", "fastddgan.ddpm")


@dataclass(frozen=True)
class SamplingSetup:
    """How a model samples with T steps.

    ``sampler(denoiser, x, schedule, seeds, *, extra_args=None, trajectory=None, **options)``: the reverse chain (a
    function of :mod:`fastddgan.sampling`, with ``streams_per_step``); ``schedule``: the schedule it walks (a
    DDPM's respaced one); ``options``: the sampler's keyword options; ``denoiser(net, device, guidance)``: the
    callable the sampler calls, prepared once for the (possibly compiled) sampling network ``net`` on ``device``,
    taking the labels as ``y=`` (the sampler's ``extra_args``). It holds the model's settings by value, not the
    model, so a cached plan does not keep the model alive.
    """

    sampler: Callable[..., torch.Tensor]
    schedule: Schedule
    denoiser: Callable[[nn.Module, torch.device, float], Callable[..., torch.Tensor]]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def streams(self) -> int:
        """Philox streams per sample: x_T, then ``sampler.streams_per_step`` per step."""
        return 1 + self.sampler.streams_per_step * self.schedule.T


@runtime_checkable
class Model(Protocol):
    """What sampling, checkpoints and export use of a model (see the module doc)."""

    kind: str
    roles: Tuple[str, ...]
    schedule: Schedule
    sample_shape: Tuple[int, ...]
    num_classes: Optional[int]
    train_state: Any  # fastddgan.train_state.TrainState

    @property
    def T(self) -> int: ...

    def sampling_network(self) -> nn.Module: ...

    def sampling_setup(self, T: Optional[int], ddim: bool = False, variance: str = "small") -> SamplingSetup: ...

    def load_sampling_weights(self, weights: Mapping[str, torch.Tensor]) -> None: ...

    def state_dict(self, *args, **kwargs) -> Dict[str, Any]: ...


class EMASampling:
    """The protocol's parts that a family sampling with an EMA copy of one trained network shares (DDGAN: of the
    generator, DDPM: of the denoiser): ``T`` of the schedule, the EMA network for sampling, exported weights loaded
    into both. ``ema_of`` names the attribute of the trained network."""

    ema_of: str

    @property
    def T(self) -> int:
        return self.schedule.T

    def sampling_network(self) -> nn.Module:
        return self.ema.module

    def load_sampling_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        self.ema.module.load_state_dict(weights)
        getattr(self, self.ema_of).load_state_dict(weights)


_FAMILIES: Dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` (with ``kind``, ``roles``, ``default_schedule`` and ``from_networks``) the
    family that checkpoints of ``cls.kind`` rebuild."""
    for name in ("kind", "roles", "default_schedule", "from_networks"):
        if not hasattr(cls, name):
            raise TypeError(f"register: {cls.__name__} has no {name!r}; a model family needs kind, roles, "
                            f"default_schedule and from_networks")
    _FAMILIES[cls.kind] = cls
    return cls


def _load_builtins() -> None:
    for module in BUILTIN_FAMILIES:
        importlib.import_module(module)


def kinds() -> Tuple[str, ...]:
    """The registered family names, built-in ones first (``("ddgan", "ddpm")``)."""
    _load_builtins()
    return tuple(_FAMILIES)


def family(kind: str) -> type:
    """The family class registered as ``kind``; a ValueError for an unknown name."""
    if isinstance(kind, str) and kind not in _FAMILIES:
        _load_builtins()
    if not isinstance(kind, str) or kind not in _FAMILIES:
        raise ValueError(f"kind: expected one of {kinds()}, got {kind!r}")
    return _FAMILIES[kind]


def is_model(obj: Any) -> bool:
    """Whether ``obj`` follows the :class:`Model` protocol (a model of a registered family, say)."""
    return isinstance(obj, Model)


__all__ = ["Model", "SamplingSetup", "EMASampling", "register", "family", "kinds", "is_model", "BUILTIN_FAMILIES"]
