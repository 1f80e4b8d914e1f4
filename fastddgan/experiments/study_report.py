"""The study's report (``python -m fastddgan.experiments.compare``): ``table.md`` / ``table.csv`` (every row's
metrics as mean ± std over seeds, with notes on the classifier files and machines behind them), ``summary.md`` (the
headline metric as an objective x T matrix), ``figure.png`` (one scatter plot or sample grid per row and seed) and
``training-scores.md`` (each run's in-training scores by step, for runs trained with ``--eval-every``, and the
discriminator's divergence bound per reverse step late in training, for DDGAN runs that logged it)."""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any, Dict, List, Optional

import torch

from .._io import read_jsonl
from .._machine import UNRECORDED
from ..data.convert import to_uint8, unit_to_uint8
from ..metric_keys import per_step_divergence_t
from ..train.discriminator_watch import FlatDiscriminatorWatch
from ..train.plots import scatter_tile
from ._numbers import fixed_mean_std as _fixed_mean_std
from ._numbers import mean_std as _mean_std

FIGURE_POINTS, FIGURE_IMAGES = 2000, 64  # samples per figure tile (and kept in each stored evaluation)
NOT_TRAINED = "not trained yet"
NOT_SCORED = "trained, not scored yet"  # --report-only: a trained run with an evaluation not stored yet


def tile(samples: torch.Tensor, reference: Optional[torch.Tensor]) -> torch.Tensor:
    """A (3, 256, 256) uint8 picture of the samples: scatter plot (2-D) or an 8x8 grid (images)."""
    if reference is not None:
        return unit_to_uint8(scatter_tile(samples[:FIGURE_POINTS], reference, size=256))
    import torchvision.utils as vutils

    grid = vutils.make_grid(to_uint8(samples[:FIGURE_IMAGES]), nrow=8, padding=1)
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return torch.nn.functional.interpolate(grid[None], size=(256, 256), mode="nearest")[0]


def _seed_label(row: Dict[str, Any], seed: int) -> str:
    """A tile's caption: the row, the seed and that seed's headline number (FID-dom, or the modes covered)."""
    record = next((s for s in row["seeds"] if s.get("seed") == seed), {})
    metrics = record.get("metrics", {})
    label = f"{row['row']} seed {seed}"
    if metrics.get("FID-dom") is not None:
        label += f": FID-dom {metrics['FID-dom']:.2f}"
    elif metrics.get("modes_covered") is not None:
        label += f": {metrics['modes_covered']}/{metrics['num_modes']} modes"
    return label


def figure(rows: List[Dict[str, Any]], tiles: Dict[str, Dict[int, torch.Tensor]], path: str,
           per_line: int = 6) -> None:
    """One labelled tile per row and seed (``tiles[row][seed]``), a row's seeds side by side; as many rows on a
    line of ``per_line`` tiles as fit whole (PIL for the labels)."""
    from PIL import Image, ImageDraw

    size, label_h = 256, 28
    shown = [r for r in rows if tiles.get(r["row"])]
    width = max((len(tiles[r["row"]]) for r in shown), default=1)  # tiles per row: its seeds
    rows_per_line = max(1, per_line // width)
    lines = max(1, math.ceil(len(shown) / rows_per_line))
    canvas = Image.new("RGB", (min(len(shown), rows_per_line) * width * size or size, lines * (size + label_h)),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(shown):
        y = (i // rows_per_line) * (size + label_h)
        for j, seed in enumerate(sorted(tiles[row["row"]])):
            x = ((i % rows_per_line) * width + j) * size
            canvas.paste(Image.fromarray(tiles[row["row"]][seed].permute(1, 2, 0).numpy()), (x, y + label_h))
            draw.text((x + 4, y + 8), _seed_label(row, seed), fill="black")
    gray = all(bool((t[0] == t[1]).all() and (t[1] == t[2]).all()) for r in shown for t in tiles[r["row"]].values())
    buffer = io.BytesIO()
    (canvas.convert("L") if gray else canvas).save(buffer, format="png", optimize=True)  # digits: a third the size
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


METRIC_COLUMNS = {"toy": [("modes_covered", "modes"), ("high_quality", "high quality"),
                          ("spread", "spread (data 1)"), ("offset", "offset (std)"),
                          ("sliced_wasserstein", "sliced W1"), ("mmd2", "MMD^2")],
                  "image": [("FID-dom", "FID-dom"), ("FID-dom-balanced", "FID-dom balanced"), ("IS-dom", "IS-dom"),
                            ("classes", "classes"), ("class-min-share", "smallest class share"),
                            ("precision-dom", "precision-dom"), ("recall-dom", "recall-dom"),
                            ("label-accuracy", "label accuracy"), ("FID", "FID"), ("IS", "IS")]}
OPTIONAL_COLUMNS = ("label-accuracy",)  # shown only when a row measured it (the class-conditional rows)


def _guidance_label(w: Optional[float]) -> str:
    return "—" if w is None else ("0 (conditional)" if w == 0 else f"{w:g}")


def write_table(rows: List[Dict[str, Any]], kind: str, out: str, header: str) -> None:
    """``table.md`` / ``table.csv``: one line per row, each metric as mean ± std over the row's seeds; a metric
    measured on fewer of them (recorded only by newer evaluations) says on how many, "(of k)"."""
    cols = [(key, label) for key, label in METRIC_COLUMNS[kind] if key not in OPTIONAL_COLUMNS or
            any(key in s.get("metrics", {}) for r in rows for s in r["seeds"])]
    guided = any(r.get("guidance") is not None for r in rows)  # a guidance column only when a row has one
    names = ["model", "objective", "T trained", "T sampled"] + (["guidance w"] if guided else []) + \
        ["NFE", "steps trained", "seeds", "train time (s)"] + [label for _, label in cols] + ["images/s"]
    lines = []
    for r in rows:
        seeds = r["seeds"]
        done = [s for s in seeds if "metrics" in s]
        todo = sum(s.get("status") == NOT_TRAINED for s in seeds)
        unscored = sum(s.get("status") == NOT_SCORED for s in seeds)

        def stat(key):
            values = [s["metrics"].get(key) for s in done]
            measured = sum(v is not None for v in values)  # a metric added later is missing from older records
            cell = _mean_std(values)
            return cell + (f" (of {measured})" if 0 < measured < len(done) else "")

        metric_cells = [(f"{stat(key)} / {done[0]['metrics']['num_modes']}" if key == "modes_covered" and done
                         else stat(key)) for key, _ in cols]
        failed = len(seeds) - len(done) - todo - unscored
        count = f"{len(done)}" + (f" (+{failed} failed)" if failed else "") + \
            (f" ({unscored} to score)" if unscored else "") + (f" ({todo} to do)" if todo else "")
        weight = [_guidance_label(r.get("guidance"))] if guided else []
        lines.append([r["model"], r["objective"], r["T_trained"], r["T_sampled"]] + weight + [r.get("nfe", "—"),
                      _mean_std([s.get("steps") for s in seeds]), count,
                      _mean_std([s.get("train_seconds") for s in seeds])] + metric_cells +
                     [_mean_std([s.get("images_per_s") for s in done])])
    with open(os.path.join(out, "table.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(lines)
    md = [header, "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    md += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def _headline(kind: str, seeds: List[Dict[str, Any]]) -> str:
    """One summary cell: 2-D "modes / of, within 3 std % (mean ± std), spread", images "FID-dom mean ± std"; the
    number of seeds evaluated in brackets ("to do" when none is); a spread measured on fewer of them says on how
    many."""
    done = [s["metrics"] for s in seeds if "metrics" in s]
    if not done:
        return "to do"

    def stat(key, decimals, scale=1.0, counts=False):
        return _fixed_mean_std([None if m.get(key) is None else scale * m[key] for m in done], decimals, counts)

    if kind == "toy":
        spread = stat("spread", 2)
        measured = sum(m.get("spread") is not None for m in done)  # evaluations stored before spread existed lack it
        if 0 < measured < len(done):
            spread += f" (of {measured} seed{'s' if measured > 1 else ''})"
        cell = (f"{stat('modes_covered', 1, counts=True)}/{done[0]['num_modes']}, "
                f"{stat('high_quality', 1, 100.0)}%, {spread}")
    else:
        cell = stat("FID-dom", 2)
    return f"{cell} ({len(done)})"


def _one_line_table(title: str, columns: List[str], cells: List[str]) -> List[str]:
    """A markdown table of one unlabelled line: ``title`` heads the first column, ``columns`` the others."""
    return [f"| {title} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|",
            "| | " + " | ".join(cells) + " |"]


def _guided_summary(rows: List[Dict[str, Any]], kind: str) -> List[str]:
    """summary.md's lines for the class-conditional cells: one table per cell, a column per guidance weight w, the
    headline metrics in one line and (images) the label accuracy, mean ± std over seeds, in the next."""
    md: List[str] = []
    cells: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in rows:
        if r.get("guidance") is not None:
            cells.setdefault((r["model"], r["objective"], r["T_trained"], r["T_sampled"]), []).append(r)
    for (model, objective, T_trained, T_sampled), by_w in cells.items():
        name = (f"{model.upper()} {objective} T = {T_trained}" if model == "ddgan" else
                f"{model.upper()} (trained at T = {T_trained}) at {T_sampled} steps")
        md += _one_line_table(f"{name}, class-conditional, guidance w", [f"{r['guidance']:g}" for r in by_w],
                              [_headline(kind, r["seeds"]) for r in by_w])
        accuracy = [[s["metrics"].get("label-accuracy") for s in r["seeds"] if "metrics" in s] for r in by_w]
        if kind == "image" and any(v is not None for values in accuracy for v in values):
            md.append("| label accuracy | " + " | ".join(_fixed_mean_std(values, 2) if values else "to do"
                                                        for values in accuracy) + " |")
        md.append("")
    return md


def write_summary(rows: List[Dict[str, Any]], kind: str, out: str, title: str) -> None:
    """``summary.md``: the study at a glance. One matrix of the unguided DDGAN rows (an objective per line, a T
    per column), one line of the DDPM by sampling steps and one table per class-conditional cell (a column per
    guidance weight), each cell the headline metrics (:func:`_headline`)."""
    what = ("modes covered / of, share within 3 std in % (mean ± std over seeds), spread (the modes' width over "
            "the data's, 1 is right)" if kind == "toy" else "FID-dom (mean ± std over seeds)")
    md = [f"# {title}: the study at a glance", "", f"Each cell: {what}; the seeds evaluated in brackets. The "
          f"other metrics, times and speeds: `table.md`.", ""]
    ddgan = [r for r in rows if r["model"] == "ddgan" and r.get("guidance") is None]
    if ddgan:
        Ts = sorted({r["T_trained"] for r in ddgan})
        md += ["| DDGAN | " + " | ".join(f"T = {T}" for T in Ts) + " |", "|---" * (len(Ts) + 1) + "|"]
        for objective in dict.fromkeys(r["objective"] for r in ddgan):
            cells = {r["T_trained"]: _headline(kind, r["seeds"]) for r in ddgan if r["objective"] == objective}
            md.append(f"| {objective} | " + " | ".join(cells.get(T, "") for T in Ts) + " |")
        md.append("")
    ddpm = [r for r in rows if r["model"] == "ddpm" and r.get("guidance") is None]
    for T_trained in dict.fromkeys(r["T_trained"] for r in ddpm):
        sampled = [r for r in ddpm if r["T_trained"] == T_trained]
        md += _one_line_table(f"DDPM (trained at T = {T_trained}), sampling steps",
                              [str(r["T_sampled"]) for r in sampled], [_headline(kind, r["seeds"]) for r in sampled])
        md.append("")
    md += _guided_summary(rows, kind)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md))


def classifier_note(current: str, other: Dict[str, List[str]]) -> str:
    """table.md's line naming the rows (and seeds) scored with another classifier file than ``current``, by tag."""
    parts = [("untagged (scored before evaluations recorded the file)" if tag == "untagged" else f"`{tag}`") +
             f": {', '.join(names)}" for tag, names in other.items()]
    return (f"**Scored with another domain classifier file than this command's** (`{current}`; their FID-dom / "
            f"IS-dom compare only with each other; delete an evaluation file to score its run again from its "
            f"checkpoint or export): " + "; ".join(parts))


def machines_note(rows: List[Dict[str, Any]]) -> str:
    """table.md's line saying which machines the train times and images/s were measured on (a run resumed
    elsewhere counts its time on each): one machine named once, several with the runs and evaluations of each
    (those from before machines were recorded counted); "" when nothing was recorded."""
    trained: Dict[str, Dict[str, None]] = {}
    sampled: Dict[str, List[str]] = {}
    for row in rows:
        for s in row["seeds"]:
            for machine in s.get("train_machines", []):
                trained.setdefault(machine, {})[s["run"]] = None
            if "eval_machine" in s:
                sampled.setdefault(s["eval_machine"], []).append(f"{row['row']} seed {s['seed']}")
    machines = list(dict.fromkeys([m for m in list(trained) + list(sampled) if m != UNRECORDED]))
    if not machines:
        return ""
    if len(machines) == 1 and UNRECORDED not in trained and UNRECORDED not in sampled:
        return f"Train times and images/s measured on one machine: {machines[0]}."
    parts = []
    for machine in machines:
        what = ([f"trained {', '.join(trained[machine])}"] if machine in trained else []) + \
               ([f"sampled {', '.join(sampled[machine])}"] if machine in sampled else [])
        parts.append(f"{machine}: " + "; ".join(what))
    if UNRECORDED in trained or UNRECORDED in sampled:
        parts.append(f"{UNRECORDED} (before machines were recorded): {len(trained.get(UNRECORDED, {}))} training "
                     f"runs (or their first segments), {len(sampled.get(UNRECORDED, []))} evaluations")
    return ("**Train times and images/s come from several machines** (they compare only on one machine; a run "
            "resumed on another counts its time on each): " + "; ".join(parts) + ".")



TRAINING_SCORES = "training-scores.md"
LATE_SHARE = 0.2  # the per-step bounds are averaged over the last 20% of a run's logged steps


def _in_training_scores(scored: Dict[str, Dict[int, Dict[str, Any]]]) -> List[str]:
    """The scores table: a column per scored step, the run's best in bold, its step and whether it is the last."""
    steps = sorted({step for by_step in scored.values() for step in by_step})
    first = next(iter(next(iter(scored.values())).values()))
    md = [f"Each run's EMA network scored every `--eval-every` steps by the trainer (`{first['key']}`, n = "
          f"{first['n']}, sampling seed {first['seed']}: not the seed of the study's evaluation, so the last column "
          f"is a second draw of the final network); the run's best in bold. Lower is better.", "",
          "| run | " + " | ".join(f"{step:,}" for step in steps) + " | best at | best is last |",
          "|---" + "|---:" * (len(steps) + 2) + "|"]
    for name, by_step in scored.items():
        best = min(by_step, key=lambda step: by_step[step]["value"])
        cells = [("**{:.3g}**" if step == best else "{:.3g}").format(by_step[step]["value"]) if step in by_step
                 else "" for step in steps]
        md.append(f"| {name} | " + " | ".join(cells) + f" | {best:,} | {'yes' if best == max(by_step) else 'no'} |")
    return md


def _late_per_step_bounds(records: List[Dict[str, Any]]) -> Dict[int, float]:
    """{t: mean of divergence_t{t}} over the logged records in the last LATE_SHARE of the run's logged steps
    (finite values only); {} when the run did not log them."""
    logged = [r for r in records if "event" not in r and isinstance(r.get("step"), int)]
    if not logged:
        return {}
    last = max(r["step"] for r in logged)
    values: Dict[int, List[float]] = {}
    for r in logged:
        if r["step"] < (1 - LATE_SHARE) * last:
            continue
        for key, value in r.items():
            t = per_step_divergence_t(key)
            if t is not None and isinstance(value, (int, float)) and math.isfinite(value):
                values.setdefault(t, []).append(value)
    return {t: sum(v) / len(v) for t, v in sorted(values.items())}


def _flat_from(records: List[Dict[str, Any]]) -> str:
    """The step from which the run's discriminator was flat by the trainer's watch (its logged R1 term replayed
    through :class:`FlatDiscriminatorWatch`, so runs older than the watch get it too); "no", or "" when the run
    logged no R1 term."""
    watch = FlatDiscriminatorWatch()
    for r in records:
        if "event" not in r and watch.update(r) is not None:
            return f"{r['step']:,}"
    return "no" if watch.peak is not None else ""


def _per_step_bound_table(bounds: Dict[str, Dict[int, float]], flat: Dict[str, str]) -> List[str]:
    """The discriminators' divergence bound per reverse step t and when the discriminator went flat: a row per
    DDGAN run that logged either."""
    ts = sorted({t for by_t in bounds.values() for t in by_t})
    md = ["## The discriminator's divergence bound per reverse step", "",
          f"Each DDGAN run's logged estimate of its objective's divergence between true and generated pairs at step "
          f"t (`divergence_t<t>` in metrics.jsonl: the bound E_data[g(V)] - E_model[f*(g(V))] of the D step's "
          f"batch, t = 0 the last step, the one to the data), averaged over the last {LATE_SHARE:.0%} of training. "
          f"Higher: the discriminator tells that step's generated pairs from true ones better (the bound at "
          f"chance, D unable to tell, is -ln 4 = -1.386 for js and 0 for the others). \"D flat from\": the step "
          f"where the logged R1 term (D's mean squared input gradient on true pairs), averaged over 500 steps, fell "
          f"below 1/100 of its highest (the trainer's warning, `fastddgan/train/discriminator_watch.py`); empty "
          f"where no R1 term is logged (Wasserstein); runs trained before the per-step bounds were logged have that "
          f"column alone.", "",
          "| run | " + " | ".join(f"t = {t}" for t in ts) + " | D flat from |", "|---" + "|---:" * (len(ts) + 1) + "|"]
    for name, by_t in bounds.items():
        md.append(f"| {name} | " + " | ".join(f"{by_t[t]:.4f}" if t in by_t else "" for t in ts) +
                  f" | {flat.get(name, '')} |")
    return md


def write_training_scores(runs: str, out: str) -> Optional[str]:
    """``training-scores.md``: a row per run folder under ``runs`` whose metrics.jsonl holds in-training scores
    ('eval' records of ``--eval-every``), a column per scored step, the run's best in bold, then the step of the
    best and whether it is the last; then, for the DDGAN runs that logged them, the discriminator's divergence
    bound per reverse step late in training and the step from which it was flat. None (and no file) when no run
    has any of these."""
    scored, bounds, flat = {}, {}, {}
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        records = read_jsonl(os.path.join(runs, name, "metrics.jsonl"))
        evals = [r for r in records if r.get("event") == "eval" and isinstance(r.get("value"), (int, float))]
        if evals:
            scored[name] = {r["step"]: r for r in evals}  # a step scored twice (resumed): the later record
        late = _late_per_step_bounds(records)
        flat_from = _flat_from(records)
        if late or flat_from:
            bounds[name], flat[name] = late, flat_from
    if not scored and not bounds:
        return None
    md = ["# Scores during training", ""]
    if scored:
        md += _in_training_scores(scored)
    if bounds:
        md += ([""] if scored else []) + _per_step_bound_table(bounds, flat)
    path = os.path.join(out, TRAINING_SCORES)
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
    return path
