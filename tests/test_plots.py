"""The pictures of a run: captioned sample grids, scatter plots that show model against data, training curves;
with matplotlib and with the Pillow fallback."""

import numpy as np
import pytest
import torch

from fastddgan.data import TOY2D
from fastddgan.train import plots

RECORDS = [{"step": s, "loss_d": 1.4 - s / 1000, "loss_g": 0.7, "divergence": -1.4 + s / 1000, "r1": 0.05,
            "lr": 1e-3, "it_per_s": 60.0} for s in range(50, 501, 50)] + [{"event": "finished", "step": 500}]


@pytest.fixture(params=["matplotlib", "pillow"])
def backend(request, monkeypatch):
    if request.param == "matplotlib":
        pytest.importorskip("matplotlib")
    else:
        monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    return request.param


def _share(image, colour):
    """Share of pixels of a clearly red (model) or blue (data) hue, blended with white or not."""
    a = np.asarray(image.convert("RGB")).astype(int)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    mask = (r - b > 50) & (r - g > 50) if colour == "red" else (b - r > 50) & (b - g > 20)
    return float(mask.mean())


def _dark_rows(image, top, bottom):
    a = np.asarray(image.convert("L"))[top:bottom]
    return int((a < 100).any(axis=1).sum())


def test_scatter_plot_shows_model_and_data_with_a_title(backend):
    data = TOY2D["ring8"].sample(1000, generator=torch.Generator().manual_seed(0))
    model = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    image = plots.scatter_plot(model, data, ["DDGAN js, T=4 on ring8: step 300 of 3000", "modes 3/8"])
    assert min(image.size) >= 400
    assert _share(image, "red") > 1e-3 and _share(image, "blue") > 1e-4  # both clouds are drawn
    assert _dark_rows(image, 0, 40) > 5  # text above the plot


def test_scatter_plot_without_model_points_has_no_red(backend):
    data = TOY2D["ring8"].sample(500, generator=torch.Generator().manual_seed(0))
    image = plots.scatter_plot(torch.full((10, 2), 100.0), data, ["far away"])  # outside the frame
    assert _share(image, "red") < 1e-3  # only the legend's marker is red


def test_scatter_plot_draws_the_model_over_the_data(backend):
    """A model whose samples are the data's own covers them (red wins), and a mode it misses stays blue."""
    data = TOY2D["ring8"].sample(2000, generator=torch.Generator().manual_seed(0))
    covered = plots.scatter_plot(data, data, ["the data itself"])
    assert _share(covered, "red") > 1e-3 and _share(covered, "blue") < 0.2 * _share(covered, "red")
    k, _ = TOY2D["ring8"].nearest_mode(data)
    missing = plots.scatter_plot(data[k != 0], data, ["mode 0 missing"])
    assert _share(missing, "blue") > 1.5 * _share(covered, "blue")  # about 2x: the missed mode's blob


def test_scatter_plot_legend_hides_no_mode(backend):
    """A model holding one corner mode of grid25 shows as much red at each corner (the legend sat on (4, 4) and
    hid it: less than half the red of the other corners)."""
    grid = TOY2D["grid25"]
    data = grid.sample(5000, generator=torch.Generator().manual_seed(0))
    k, _ = grid.nearest_mode(data)
    red = []
    for corner in ([4.0, 4.0], [-4.0, -4.0], [4.0, -4.0], [-4.0, 4.0]):
        i = int((grid.centers - torch.tensor(corner)).norm(dim=1).argmin())
        red.append(_share(plots.scatter_plot(data[k == i], data, ["one corner mode"]), "red"))
    assert min(red) > 0.8 * max(red)


def test_sample_grid_is_captioned_and_enlarged():
    images = torch.full((10, 1, 28, 28), -1.0)  # the model's range: black
    images[:, :, 10:18, 10:18] = 1.0
    grid = plots.sample_grid(images, nrow=3, caption=["DDPM eps, T=1000 on mnist5k: step 2 of 2", "EMA"])
    # 3 x 4 tiles of 30 px + 2 px border = 92 x 122, enlarged 2x, with a caption strip above
    assert grid.width >= 184 and grid.height > 244
    strip = grid.height - 244
    assert _dark_rows(grid, 0, strip) > 5
    text = np.asarray(grid.convert("L"))[:strip] < 100
    assert grid.width > 184 and text[:, 184:].any()  # widened so that the caption line fits


def test_training_curves_one_panel_per_quantity(backend):
    image = plots.training_curves(RECORDS, "DDGAN js, T=4 on ring8: training curves")
    assert image is not None and image.height > 400
    assert plots.training_curves([{"event": "started", "step": 0}], "nothing") is None


def test_curve_keys_expand_per_step_prefixes_in_numerical_order():
    records = [{"step": 1, "divergence": 0.1, "divergence_t10": 0.0, "divergence_t2": 0.0, "divergence_tx": 0.0},
               {"step": 2, "divergence_t0": 0.0}]
    assert plots._expand_keys(("divergence", "divergence_t*"), records) == [
        "divergence", "divergence_t0", "divergence_t2", "divergence_t10"]
    per_step = [dict(r, **{f"divergence_t{t}": r["divergence"] * t for t in range(4)}) for r in RECORDS[:-1]]
    assert plots.training_curves(per_step, "per step").size == plots.training_curves(RECORDS, "overall").size


def test_training_curves_skip_non_finite_values(backend):
    records = RECORDS + [{"step": 550, "loss_d": float("nan"), "lr": 1e-3}]
    assert plots.training_curves(records, "with a NaN") is not None
