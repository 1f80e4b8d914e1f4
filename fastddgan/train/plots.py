"""Pictures of a training run: sample grids with a caption, 2-D scatter plots (model against data) and training
curves. matplotlib draws them when it is installed (labelled axes, legend, title); without it, Pillow draws
simpler versions that still carry the caption and the legend, so a picture always says what it shows.

Every function returns a PIL image; :meth:`RunFolder.save_png` writes it atomically.
"""

from __future__ import annotations

import io
import math
from typing import Any, Dict, List, Sequence

import torch

from ..data.convert import to_uint8, unit_to_uint8
from ..metric_keys import PER_STEP_DIVERGENCE

MODEL_COLOUR, DATA_COLOUR = (0.85, 0.1, 0.1), (0.35, 0.55, 0.95)
# the curves drawn, in this order, when the run logged them: (title, metric keys on one panel); a key ending in
# "*" stands for every logged key with that prefix, in numerical order (DDGAN's divergence_t0, divergence_t1, ...)
CURVE_PANELS = [
    ("losses", ("loss_d", "loss_g", "loss")),
    ("divergence estimate (variational bound), overall and per step t", ("divergence", PER_STEP_DIVERGENCE + "*")),
    ("penalties", ("r1", "gp")),
    ("mode-seeking term: mean 1 / latent ratio (--diversity)", ("inverse_latent_ratio",)),
    ("learning rate", ("lr",)),
    ("iterations per second", ("it_per_s",)),
]


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no screen needed; a no-op when a backend is already in use
    import matplotlib.pyplot as plt

    return plt


def _figure_to_image(fig):
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        return ImageFont.load_default()


def _with_caption(image, lines: Sequence[str], legend: Sequence[tuple] = ()):
    """``image`` (PIL) under a white strip holding ``lines`` of text and, optionally, legend entries
    (label, rgb in [0, 1])."""
    from PIL import Image, ImageDraw

    font = _font(14)
    line_h = 18
    rows = len(lines) + (1 if legend else 0)
    strip = 8 + rows * line_h
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max([measure.textlength(line, font=font) for line in lines] + [0])
    out = Image.new("RGB", (max(image.width, int(text_w) + 12), image.height + strip), "white")
    out.paste(image, (0, strip))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((6, 4 + i * line_h), line, fill="black", font=font)
    x, y = 6, 4 + len(lines) * line_h
    for label, colour in legend:
        rgb = tuple(int(255 * c) for c in colour)
        draw.rectangle([x, y + 4, x + 10, y + 14], fill=rgb)
        draw.text((x + 14, y), label, fill="black", font=font)
        x += 24 + 9 * len(label)
    return out


# ---------------------------------------------------------------------------------------------- sample grids
def sample_grid(images: torch.Tensor, nrow: int, caption: Sequence[str]):
    """A grid of ``images`` (the model's samples, (n, c, h, w) in [-1, 1]) with ``caption`` lines above it."""
    import torchvision.utils as vutils
    from PIL import Image

    grid = vutils.make_grid(to_uint8(images.cpu()), nrow=nrow, padding=2, pad_value=255)  # white borders
    array = grid.permute(1, 2, 0).numpy()
    image = Image.fromarray(array if array.shape[2] == 3 else array[:, :, 0], "RGB" if array.shape[2] == 3 else "L")
    scale = max(1, 256 // image.width)  # small grids (28x28 digits, few per row) are enlarged to stay readable
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return _with_caption(image.convert("RGB"), caption)


# ---------------------------------------------------------------------------------------------- 2-D scatter
def _frame(reference: torch.Tensor):
    lo, hi = reference.min(0).values, reference.max(0).values
    centre, half = (lo + hi) / 2, float((hi - lo).max()) * 0.575 + 1e-6
    return centre, half


def scatter_plot(points: torch.Tensor, reference: torch.Tensor, title: Sequence[str], size: int = 512):
    """Model samples (red) drawn over data samples (blue) in the square that holds the data with a 15% margin."""
    points, reference = points.detach().float().cpu(), reference.detach().float().cpu()
    if have_matplotlib():
        centre, half = _frame(reference)
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(size / 100, size / 100 + 0.3 * len(title)))
        # the data below, the model on top (as in scatter_tile): a mode the model misses stays blue, one it
        # covers turns red (with the data on top, a missing mode looked like a covered one)
        ax.scatter(reference[:, 0], reference[:, 1], s=4, color=DATA_COLOUR, alpha=0.6, label="data", lw=0)
        ax.scatter(points[:, 0], points[:, 1], s=3, color=MODEL_COLOUR, alpha=0.6, label="model", lw=0)
        ax.set_xlim(float(centre[0]) - half, float(centre[0]) + half)
        ax.set_ylim(float(centre[1]) - half, float(centre[1]) + half)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        # below the axes: inside them it hid a corner mode (grid25's (4, 4))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, markerscale=4, frameon=False)
        ax.set_title("\n".join(title), fontsize=9)
        ax.grid(alpha=0.2)
        return _figure_to_image(fig)
    return _with_caption(_to_pil(scatter_tile(points, reference, size)), title,
                         legend=[("model", MODEL_COLOUR), ("data", DATA_COLOUR)])


def scatter_tile(points: torch.Tensor, reference: torch.Tensor, size: int = 512) -> torch.Tensor:
    """A (3, size, size) picture in [0, 1] without text: ``reference`` points blue, ``points`` red, on white, in
    the square that holds the reference with a 15% margin (points outside it are not drawn)."""
    points, reference = points.detach().float().cpu(), reference.detach().float().cpu()
    centre, half = _frame(reference)
    image = torch.ones(3, size, size)

    def draw(p: torch.Tensor, colour) -> None:
        ij = ((p - (centre - half)) / (2 * half) * (size - 1)).round().long()
        col, row = ij[:, 0], size - 1 - ij[:, 1]
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
                for ch, v in enumerate(colour):
                    image[ch, r[inside], c[inside]] = v

    draw(reference, DATA_COLOUR)
    draw(points, MODEL_COLOUR)
    return image


def _to_pil(image: torch.Tensor):
    from PIL import Image

    return Image.fromarray(unit_to_uint8(image).permute(1, 2, 0).numpy(), "RGB")


# ---------------------------------------------------------------------------------------------- curves
def _series(records: List[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, list]:
    """{key: [(step, value), ...]} of the finite values of ``keys`` in ``records`` (keys with none left out)."""
    series = {k: [(r["step"], r[k]) for r in records if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
              for k in keys}
    return {k: v for k, v in series.items() if v}


def _expand_keys(keys: Sequence[str], records: List[Dict[str, Any]]) -> List[str]:
    """``keys`` with each "prefix*" replaced by the records' keys "prefix<number>", sorted by the number."""
    out = []
    for key in keys:
        if not key.endswith("*"):
            out.append(key)
            continue
        prefix = key[:-1]
        found = {k for r in records for k in r if k.startswith(prefix) and k[len(prefix):].isdigit()}
        out.extend(sorted(found, key=lambda k: int(k[len(prefix):])))
    return out


def training_curves(records: List[Dict[str, Any]], title: str):
    """One panel per logged quantity group (losses, divergence estimate, penalties, lr, it/s) against the step, and
    one of the in-training scores ('eval' events, --eval-every); ``records`` are metrics.jsonl's (other events are
    skipped). None when nothing was logged yet."""
    scored = [{"step": r["step"], r["key"]: r["value"]} for r in records
              if r.get("event") == "eval" and r.get("key") and isinstance(r.get("value"), (int, float))]
    records = [r for r in records if "event" not in r and "step" in r]
    panels = []
    for name, keys in CURVE_PANELS:
        series = _series(records, _expand_keys(keys, records))
        if series:
            panels.append((name, series))
    series = _series(scored, list(dict.fromkeys(k for r in scored for k in r if k != "step")))
    if series:
        panels.append(("in-training score (--eval-every; lower is better)", series))
    if not panels:
        return None
    if have_matplotlib():
        plt = _pyplot()
        fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.9 * len(panels) + 0.4), sharex=True, squeeze=False)
        for ax, (name, series) in zip(axes[:, 0], panels):
            for key, values in series.items():
                steps, ys = zip(*values)
                ax.plot(steps, ys, lw=1.2, label=key, marker="." if len(values) < 20 else None)
            ax.set_title(name + (f": {next(iter(series))}" if len(series) == 1 else ""), fontsize=9, loc="left")
            ax.grid(alpha=0.3)
            if len(series) > 1:
                ax.legend(fontsize=8, loc="best")
        axes[-1, 0].set_xlabel("training step")
        fig.suptitle(title, fontsize=10)
        return _figure_to_image(fig)
    return _curves_pixels(panels, title)


def _curves_pixels(panels, title: str, width: int = 640, panel_h: int = 120):
    """A Pillow fallback: each panel a polyline per key, with the step range and the value range written on it."""
    from PIL import Image, ImageDraw

    colours = [(200, 30, 30), (30, 80, 200), (30, 150, 60)]
    image = Image.new("RGB", (width, panel_h * len(panels)), "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    for p, (name, series) in enumerate(panels):
        top = p * panel_h
        box = (50, top + 18, width - 10, top + panel_h - 16)
        draw.rectangle(box, outline=(160, 160, 160))
        xs = [s for v in series.values() for s, _ in v]
        ys = [y for v in series.values() for _, y in v]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = min(ys), max(ys)
        y1 = y1 if y1 > y0 else y0 + 1
        label = name + ": " + ", ".join(f"{k} ({c})" for k, c in zip(series, ("red", "blue", "green")))
        draw.text((4, top + 2), label, fill="black", font=font)
        draw.text((4, box[1]), f"{y1:.3g}", fill="black", font=font)
        draw.text((4, box[3] - 12), f"{y0:.3g}", fill="black", font=font)
        draw.text((box[0], box[3] + 2), f"step {x0}", fill="black", font=font)
        draw.text((box[2] - 80, box[3] + 2), f"step {x1}", fill="black", font=font)
        for colour, values in zip(colours, series.values()):
            pts = [(box[0] + (s - x0) / (x1 - x0) * (box[2] - box[0]),
                    box[3] - (y - y0) / (y1 - y0) * (box[3] - box[1])) for s, y in values]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            else:
                draw.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=colour)
    return _with_caption(image, [title])


__all__ = ["sample_grid", "scatter_plot", "scatter_tile", "training_curves", "have_matplotlib"]
