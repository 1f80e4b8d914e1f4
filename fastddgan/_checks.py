"""The argument checks of the package, in one place: bad input gets a ValueError/TypeError naming the argument and
what was expected, before any work (or kernel) runs.

Checks of tensor *values* (timestep and label ranges) need the values on the host: :func:`check_values` is the one
policy, always for CPU tensors, for device tensors only with ``FASTDDGAN_DEBUG=1`` (a host-device sync otherwise),
and never while ``torch.compile`` traces (the ops repeat the timestep check inside their kernels, see
``fastddgan/ops/_library.py``).
"""

from __future__ import annotations

import numbers
import os
from typing import Optional, Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_values(x: torch.Tensor) -> bool:
    """Whether to check the values of ``x`` now (see the module docstring)."""
    if torch.compiler.is_compiling():
        return False
    return x.device.type == "cpu" or os.environ.get("FASTDDGAN_DEBUG") == "1"


# ----------------------------------------------------------------------------------------------- numbers


def is_int(value, integral: bool = False) -> bool:
    """A Python int, and not a bool (``True`` is an int to Python, never a count or an index here); with
    ``integral``, any ``numbers.Integral`` (NumPy integers too), still not a bool."""
    return isinstance(value, numbers.Integral if integral else int) and not isinstance(value, bool)


def integer(name: str, value, minimum: Optional[int] = None, maximum: Optional[int] = None, *,
            expected: Optional[str] = None, integral: bool = False, error: type = ValueError):
    """``value`` if it is an int (``integral``: see :func:`is_int`) in [minimum, maximum] (either bound optional);
    else an ``error`` (a ValueError or a subclass) ``"<name>: expected an integer >= 1, got 0"`` (``expected``
    replaces the words after "expected")."""
    if is_int(value, integral) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return value
    if expected is None:
        if minimum is not None and maximum is not None:
            expected = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        else:
            expected = f"an integer <= {maximum}" if maximum is not None else "an integer"
    raise error(f"{name}: expected {expected}, got {value!r}")


def positive_int(name: str, value, minimum: int = 1) -> int:
    """An int >= ``minimum`` (1 by default): the sizes and counts of the models' constructors."""
    return integer(name, value, minimum, expected=f"an int >= {minimum}")


def finite_number(name: str, value, minimum: float = 0.0, *, what: str = "a finite number >= 0") -> float:
    """``value`` (a number, not a string or a bool) as a float, finite and >= ``minimum``; else a ValueError naming
    ``name``."""
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {what}, got {value!r}") from None
    if not minimum <= number < float("inf"):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return number


def choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------- tensors


def dense(name: str, x: torch.Tensor) -> torch.Tensor:
    """A strided tensor: the kernels read memory directly, and sparse tensors have no such memory."""
    if x.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense tensor, got a {str(x.layout).replace('torch.', '')} tensor "
                        f"(call .to_dense() first)")
    return x


def data(name: str, x, like: Optional[torch.Tensor] = None, like_name: str = "x0") -> torch.Tensor:
    """A floating-point tensor with a batch dimension; with ``like``: same shape, dtype and device."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    dense(name, x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a floating-point tensor (float16, bfloat16, float32 or float64), "
                        f"got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name}: expected a tensor with a batch dimension, got a 0-d tensor")
    if like is not None:
        same_batch(name, x, like, like_name)
        if x.dtype != like.dtype:
            raise TypeError(f"{name}: expected dtype {like.dtype} (the dtype of {like_name}), got {x.dtype}")
    return x


def shaped(name: str, x, shape: Sequence[Optional[int]]) -> torch.Tensor:
    """A floating-point tensor whose shape matches ``shape`` (None = any size, e.g. the batch)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if x.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    return x


def same_batch(name: str, x: torch.Tensor, like: torch.Tensor, like_name: str) -> None:
    """``x`` has ``like``'s shape and device."""
    if x.shape != like.shape:
        raise ValueError(f"{name}: expected shape {tuple(like.shape)} (the shape of {like_name}), got {tuple(x.shape)}")
    if x.device != like.device:
        raise ValueError(f"{name}: expected a tensor on {like.device} (the device of {like_name}), got {x.device}")


def logits(name: str, x) -> torch.Tensor:
    """Discriminator logits as a 1-D (B,) tensor; (B,) and (B, 1) are accepted."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of logits, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected floating-point logits (float16, bfloat16, float32 or float64), "
                        f"got {x.dtype}")
    if x.dim() == 2 and x.shape[1] == 1:
        x = x.reshape(-1)
    if x.dim() != 1:
        raise ValueError(f"{name}: expected one logit per sample, shape (B,) or (B, 1), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one logit, got an empty batch")
    return x


def timesteps(t, batch: int, device: torch.device, T: Optional[int] = None, *, continuous: bool = False,
              of: str = "x0") -> torch.Tensor:
    """``t`` as a tensor of shape (B,) on ``device``: integer steps (int64 on return) or, with ``continuous``,
    float times too; a Python int is broadcast. With ``T``: steps in [0, T), the values of a tensor checked where
    :func:`check_values` says. ``of`` names the tensor whose batch and device ``t`` must match."""
    if isinstance(t, bool):
        raise TypeError("t: expected an integer tensor of timesteps, got bool")
    if isinstance(t, int):
        if T is not None and not 0 <= t < T:
            raise ValueError(f"t: expected a timestep in [0, T={T}), got {t}")
        return torch.full((batch,), t, dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected an int64 tensor of shape ({batch},) or an int, got {type(t).__name__}")
    dense("t", t)
    if t.dtype not in INT_DTYPES and not (continuous and t.is_floating_point()):
        raise TypeError(f"t: expected an integer tensor (int64), got {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"t: expected shape ({batch},), one timestep per sample of {of}, got {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"t: expected a tensor on {device} (the device of {of}), got {t.device}")
    if T is not None and check_values(t):
        timestep_values(t, T)
    return t if t.dtype == torch.int64 or t.is_floating_point() else t.long()


_FEW_VALUES = 64


def timestep_values(t: torch.Tensor, T: int) -> None:
    """The range check of ``t``'s values, which needs them on the host (:func:`timesteps` calls it where
    :func:`check_values` says; the ops call it for CPU ``t`` inside their kernels, so that it holds under
    torch.compile too). Kernels clamp unchecked device-side ``t`` into range, so they never read outside the table."""
    n = t.numel()
    if n > 0:
        if n <= _FEW_VALUES and t.device.type == "cpu":  # a few CPU values: Python's min/max cost less than a kernel
            values = t.tolist()
            lo, hi = int(min(values)), int(max(values))
        else:
            lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= T:
            raise ValueError(f"t: expected values in [0, T={T}), got values from {lo} to {hi}")


def labels(y, batch: int, num_classes: Optional[int], device: torch.device) -> Optional[torch.Tensor]:
    """Class labels (B,) in [0, num_classes]; ``num_classes`` itself is the null class, used for ``y=None``."""
    if num_classes is None:
        if y is not None:
            raise ValueError("y: this model is unconditional (num_classes=None); pass y=None")
        return None
    if y is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if is_int(y):
        if not 0 <= y <= num_classes:
            raise ValueError(f"y: expected a label in [0, num_classes={num_classes}] "
                             f"({num_classes} = null class), got {y}")
        return torch.full((batch,), y, dtype=torch.long, device=device)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y: expected an int64 tensor of shape ({batch},), an int or None, got {type(y).__name__}")
    if y.dtype not in INT_DTYPES:
        raise TypeError(f"y: expected an integer (int64) tensor of class labels, got {y.dtype}")
    if y.shape != (batch,):
        raise ValueError(f"y: expected shape ({batch},), one label per sample, got {tuple(y.shape)}")
    if y.device != device:
        raise ValueError(f"y: expected a tensor on {device} (the device of the input), got {y.device}")
    label_values(y, num_classes)
    return y.long()


def label_values(y: torch.Tensor, num_classes: int, name: str = "y", bound: Optional[str] = None) -> None:
    """The range check of labels' values, [0, num_classes] (``num_classes`` = the null class), run where
    :func:`check_values` says; ``bound`` is how the message writes the upper bound (default "num_classes=<n>")."""
    if y.numel() > 0 and check_values(y):
        lo, hi = (int(v) for v in torch.aminmax(y))
        if lo < 0 or hi > num_classes:
            bound = f"num_classes={num_classes}" if bound is None else bound
            raise ValueError(f"{name}: expected labels in [0, {bound}] ({num_classes} = the null class), "
                             f"got values from {lo} to {hi}")


def latent(z, batch: int, nz: Optional[int], device: torch.device) -> Optional[torch.Tensor]:
    """The latent ``z`` (B, nz) of a generator; must be None when the network has no latent input."""
    if nz is None:
        if z is not None:
            raise ValueError("z: this network has no latent input (nz=None); pass z=None")
        return None
    if z is None:
        raise ValueError(f"z: this network is a generator (nz={nz}) and needs a latent z of shape ({batch}, {nz}), "
                         f"e.g. torch.randn({batch}, {nz})")
    shaped("z", z, (batch, nz))
    if z.device != device:
        raise ValueError(f"z: expected a tensor on {device} (the device of the input), got {z.device}")
    return z


# ----------------------------------------------------------------------------------------------- objects


def optional_classes(num_classes) -> Optional[int]:
    """The number of classes of a conditional model, or None (unconditional)."""
    return None if num_classes is None else positive_int("num_classes", num_classes)



def instance(name: str, value, cls, what: str):
    """``value`` if it is a ``cls``, else a TypeError ``"<name>: expected <what>, got <its type>"``."""
    if not isinstance(value, cls):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")
    return value


def default_device(value=None):
    """``value``, or when it is None the device the package runs on by default: "cuda" when torch sees one, else
    "cpu" (the one default of ``--device``, ``sample(device=)``, the trainer and the evaluators)."""
    if value is not None:
        return value
    return "cuda" if torch.cuda.is_available() else "cpu"


def cli_device(value, error=ValueError) -> str:
    """``--device`` of a command (cpu or cuda; None: :func:`default_device`), refused with ``error`` in one line when
    it is cuda and torch sees no CUDA device."""
    value = default_device(value)
    if torch.device(value).type == "cuda" and not torch.cuda.is_available():
        raise error("--device: cuda was asked for but torch sees no CUDA device")
    return value


def device(value) -> torch.device:
    """``value`` as a ``torch.device`` with its index filled in ("cuda" -> "cuda:<current>"), so that it compares
    equal to the device of the tensors made on it (``torch.device("cuda") != torch.device("cuda:0")``)."""
    value = torch.device(value)
    if value.type == "cuda" and value.index is None:
        value = torch.device("cuda", torch.cuda.current_device())
    return value


def generator(g, device: torch.device) -> Optional[torch.Generator]:
    if g is None:
        return None
    if not isinstance(g, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(g).__name__}")
    if g.device.type != device.type:
        raise ValueError(f"generator: expected a generator for {device.type} tensors, got one for {g.device.type}")
    return g


def seed(s, device: Optional[torch.device], noise: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """An explicit Philox seed: an int64 tensor [key, sample_offset] (on ``device`` when one is given)."""
    if s is None:
        return None
    if noise is not None:
        raise ValueError("seed: give either noise or seed, not both")
    if not isinstance(s, torch.Tensor) or s.dtype != torch.int64 or s.shape != (2,):
        got = f"{s.dtype} tensor of shape {tuple(s.shape)}" if isinstance(s, torch.Tensor) else type(s).__name__
        raise TypeError(f"seed: expected an int64 tensor [key, sample_offset] of shape (2,), got {got}")
    dense("seed", s)
    if device is not None and s.device != device:
        raise ValueError(f"seed: expected a tensor on {device} (the device of the data), got {s.device}")
    return s
