"""``python -m fastddgan.evaluate``: quality and speed of a trained model, as a JSON record and a one-line summary.

    python -m fastddgan.evaluate runs/ring8/checkpoints/final.pt                      # 2-D: exact metrics
    python -m fastddgan.evaluate --train-classifier --dataset mnist5k                 # once per data set
    python -m fastddgan.evaluate runs/mnist5k/checkpoints/final.pt --n 10000 --out eval.json
    python -m fastddgan.evaluate CKPT --metrics fid,is --inception-weights weights-inception-2015-12-05-6726825d.pth

Metrics (``--metrics``, comma-separated; default ``auto``: ``toy`` for 2-D data; for images ``fid-dom,is-dom``
when the data set's classifier exists, plus ``fid,is`` when the Inception weights are found):

    fid, is          FID / IS with the TF-Inception (2015-12-05) weights through torch-fidelity (its resize,
                     grayscale repeated to 3 channels, IS over 10 splits), float64 statistics
    fid-dom, is-dom  the same formulas on a small classifier trained on the data set (``--train-classifier``):
                     "FID-dom" / "IS-dom", offline, never comparable with Inception numbers; with fid-dom also
                     "FID-dom-balanced" (the samples reweighted to the real data's class mix as the classifier
                     labels both: the digits' quality apart from their class proportions) and
                     "precision-dom" / "recall-dom" (improved precision and recall, k = 3, in the same features,
                     against as many real images as samples, 10,000 at most: quality and coverage apart); with
                     is-dom also "classes" (classes that get at least half a uniform share of the classifier's
                     predictions), the smallest class share and every class's share; for a class-conditional
                     model (sampled with balanced labels) also "label-accuracy", the share of samples the
                     classifier assigns to the class they were drawn for
    toy              2-D mixtures: modes covered, high-quality share (within 3 std), sliced W1, MMD^2

Reference statistics of the real data (train split) are cached per data set, feature extractor and the set's
fingerprint (number of images, size, channels; the pixels, or for a folder its files' names, sizes and times) in
``--cache-dir``. Speed: images/s of the sampling itself (after a warm-up call) and network evaluations per image.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from . import metrics as M
from . import _checks, ops
from ._cli import ArgumentParser
from ._io import atomic_write_json, check_writable
from ._machine import machine_label
from .checkpoint import check_finite, load
from .data import DataNotFoundError, images_at, load_dataset
from .data.convert import to_model_range
from .metrics.cache import classifier_path, default_cache_dir, file_tag, real_stats
from .metrics.choice import ALL_METRICS, IMAGE_METRICS, EvaluationError, choose_metrics
from .partial_draw import PartialDraw, check_partial_folder, remove_draw
from .sampling import sample
from .train.config import check_seed

__all__ = ["evaluate", "main", "build_parser", "summary", "timed_sample", "train_domain_classifier",
           "nfe_per_image", "run_config", "load_data", "scores", "EvaluationError", "real_stats",
           "default_cache_dir", "classifier_path", "IMAGE_METRICS", "ALL_METRICS", "MAX_N", "DTYPE_CHOICES"]

MAX_N = 10_000_000  # samples; FID is usually measured on 50,000
DTYPE_CHOICES = ("fp32", "bf16", "fp16")  # fastddgan.sample's autocast dtypes


def run_config(model) -> Dict[str, Any]:
    """The training run's config stored with a checkpoint (data set, data dir, image size, ...); {} for a model
    built in code."""
    return getattr(model, "checkpoint_extra", {}).get("train_config", {}) or {}


def nfe_per_image(model, T: int, guidance: float) -> int:
    """Network evaluations per image: one per step (two with classifier-free guidance)."""
    return T * (2 if guidance else 1)


def timed_sample(model, T: Optional[int], n: int, seed: int, batch_size: Optional[int], device, guidance: float,
                 ddim: bool, dtype: Optional[str] = None, truncation: float = 1.0,
                 partial: Optional[str] = None) -> Dict[str, Any]:
    """Samples (CPU float32) and the images/s of the sampling (after one warm-up chunk, synchronised); ``dtype``:
    the network's autocast dtype, ``truncation`` a DDGAN's latent scale (``fastddgan.sample``'s). ``partial``: a
    folder that keeps the images drawn so far (:class:`~fastddgan.partial_draw.PartialDraw`), a file per chunk of
    ``batch_size``; a call interrupted part-way continues from it (the same images as one uninterrupted call; the
    seconds of every part summed)."""
    labels = torch.arange(n) % model.num_classes if model.num_classes else None
    kwargs = dict(seed=seed, device=device, guidance=guidance, batch_size=batch_size, dtype=dtype,
                  truncation=truncation)
    if ddim:  # DDPM only (evaluate refuses it for a DDGAN)
        kwargs["ddim"] = ddim
    warm = min(n, batch_size or n, 64)
    sample(model, T, warm, class_labels=None if labels is None else labels[:warm], **kwargs)
    device = torch.device(device)
    steps = T or model.T
    parts, seconds, chunk, kept = [], 0.0, n, None
    if partial:  # the network's hash (a pass over its weights) only for a draw that keeps a partial folder
        kept = PartialDraw(partial, {"network": network_tag(model), "device": device.type, "T": steps, "n": n,
                                     "seed": seed, "batch_size": batch_size, "guidance": float(guidance),
                                     "ddim": bool(ddim), "dtype": str(dtype), "truncation": float(truncation)})
        parts, seconds = kept.resume()
        chunk = batch_size or n
    for start in range(sum(len(x) for x in parts), n, chunk):
        size = min(chunk, n - start)
        began = time.perf_counter()
        x = sample(model, T, size, class_labels=None if labels is None else labels[start:start + size],
                   start_index=start, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        spent = time.perf_counter() - began
        seconds += spent
        parts.append(x.float().cpu())
        if kept is not None:
            kept.append(start, parts[-1], spent)
    return {"samples": torch.cat(parts), "labels": labels, "seconds": seconds, "images_per_s": n / seconds,
            "nfe_per_image": nfe_per_image(model, steps, guidance), "T": steps, "batch_size": batch_size or n}


def network_tag(model) -> str:
    """10 hex digits of the sha1 of the model's sampling network (names, dtypes, shapes and bytes of its state):
    which network a partial draw was made with."""
    h = hashlib.sha1()
    for name, value in sorted(model.sampling_network().state_dict().items()):
        value = value.detach().cpu().contiguous()
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:10]


def _device(device: Optional[str]) -> str:
    """``--device`` (default: cuda when available), refused in one line when it is cuda and there is none."""
    return _checks.cli_device(device, EvaluationError)


def _check_seed(seed: int) -> None:
    try:
        check_seed(seed, "--seed")
    except ValueError as err:
        raise EvaluationError(str(err)) from None


def load_data(dataset: str, data_dir: str, image_size: Optional[int], channels: Optional[int]):
    """The data set the metrics compare with (a folder:PATH data set needs its image size)."""
    if dataset.startswith("folder:") and image_size is None:
        raise EvaluationError(f"--image-size: required for --dataset {dataset} (the side of the square images, "
                              f"e.g. 64)")
    return load_dataset(dataset, data_dir=data_dir, image_size=image_size, channels=channels)


PR_MAX_SAMPLES = 10_000


def real_images(data, n: int, seed: int) -> torch.Tensor:
    """``n`` real images of ``data`` (all of them when it holds fewer), drawn without replacement by ``seed``, in
    [-1, 1]: the real side of precision / recall."""
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return to_model_range(images_at(data, index))


def scores(x: torch.Tensor, chosen: List[str], data, dataset: str, clf_path: str, inception, cache_dir: str,
           device: str, seed: int, real: Optional[torch.Tensor] = None,
           labels: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    """The chosen metrics of the samples ``x`` against ``data`` (the "metrics" of the JSON record). ``real``:
    the real images (in [-1, 1]) of precision / recall (default: as many as samples drawn by ``seed``); samples
    made from some real images (noised and denoised) need others here. ``labels``: the classes conditional
    samples were drawn for (with the domain classifier's metrics, "label-accuracy")."""
    results: Dict[str, Any] = {}
    if "toy" in chosen:
        results.update(M.toy2d_metrics(x, dataset, generator=torch.Generator().manual_seed(seed)))
    if "fid-dom" in chosen or "is-dom" in chosen:
        if not os.path.isfile(clf_path):
            raise EvaluationError(f"--classifier: no domain classifier at {clf_path}; train one with python -m "
                                  f"fastddgan.evaluate --train-classifier --dataset {dataset}")
        clf = M.DomainClassifier.load(clf_path, device=device)
        # the file's tag: classifiers trained alike on other CPUs differ (FID-dom by several %), so a table
        # compares only numbers of one file (and the real images' statistics are cached per file)
        tag = file_tag(clf_path)
        feats, logits = clf.features_and_logits(x)
        if "fid-dom" in chosen:
            feature = f"dom-{tag}"
            stats = real_stats(data, feature, clf.features, cache_dir)
            results[M.FID_DOM] = M.fid_dom(feats, stats)
            shares = M.real_class_shares(data, clf, feature, cache_dir)
            results[M.FID_DOM_BALANCED] = M.fid_dom_balanced(feats, logits, stats, shares)
            # cdist costs m^2 d: the first 10,000 samples at most, and equal set sizes
            m = min(len(x), PR_MAX_SAMPLES, len(x) if real is None else len(real))
            real_m = real_images(data, m, seed) if real is None else real[:m]
            results.update(M.domain_precision_recall(feats[:m], clf.features(real_m)))
        if "is-dom" in chosen:
            results[M.IS_DOM], results[M.IS_DOM + "-std"] = M.is_dom(logits)
            results.update(M.class_coverage(logits))
        if labels is not None:
            results[M.LABEL_ACCURACY] = M.label_accuracy(logits, labels)
        results["classifier"] = {"path": os.path.abspath(clf_path), "heldout_accuracy": clf.heldout_accuracy,
                                 "tag": tag}
    if inception is not None:
        feats, logits = inception.features(x)
        if "fid" in chosen:
            mu_r, sigma_r = real_stats(data, "inception-2015-12-05", lambda b: inception.features(b)[0], cache_dir)
            mu, sigma = M.feature_stats(feats)
            results["FID"] = M.frechet_distance(mu, sigma, mu_r, sigma_r)
        if "is" in chosen:
            results["IS"], results["IS-std"] = M.inception_score(logits)
    return results


def evaluate(model, *, metrics: str = "auto", n: int = 10000, T: Optional[int] = None, seed: int = 0,
             batch_size: Optional[int] = 500, dataset: Optional[str] = None, data_dir: Optional[str] = None,
             cache_dir: Optional[str] = None, inception_weights: Optional[str] = None,
             classifier: Optional[str] = None, guidance: float = 0.0, ddim: bool = False,
             device: Optional[str] = None, keep_samples: bool = False, image_size: Optional[int] = None,
             channels: Optional[int] = None, dtype: Optional[str] = None, truncation: float = 1.0,
             partial: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate ``model`` (a model or a checkpoint / export path); returns the JSON record (see module doc), with
    the samples under "samples" when ``keep_samples``. ``image_size`` / ``channels``: of a folder:PATH data set
    (default: the training run's). ``dtype``: None / "fp32", "bf16" or "fp16" autocast of the network calls.
    ``truncation``: a DDGAN's latent z ~ N(0, truncation^2 I) (default 1). ``partial``: a folder that keeps
    the draw's finished chunks of ``batch_size`` images, so that an interrupted evaluation continues where it
    stopped (see :func:`timed_sample`); its files are removed once the scores are made (the folder too when
    nothing else is in it)."""
    _checks.integer("--n", n, 2, MAX_N, expected=f"an integer in [2, {MAX_N:,}]", error=EvaluationError)
    if (dtype or "fp32") not in DTYPE_CHOICES:
        raise EvaluationError(f"--dtype: expected one of {DTYPE_CHOICES}, got {dtype!r}")
    _check_seed(seed)
    if partial:
        check_partial_folder(partial, "partial")  # before the model is loaded and sampled
    device = _device(device)
    ops.select(torch.device(device))  # a FASTDDGAN_BACKEND that cannot run here: one line before any work
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    if source is not None:
        model = load(source, map_location=device)  # refuses non-finite weights, naming the file
    else:
        check_finite(model.ema.module.state_dict(), "model: the EMA network")
    if ddim and not hasattr(model, "prediction"):
        raise EvaluationError("--ddim: DDIM steps are for DDPM models; this is a DDGAN (it samples with its "
                              "generator)")
    train_config = run_config(model)
    trained_on = train_config.get("dataset")
    if dataset is not None and trained_on is not None and dataset != trained_on:
        print(f"warning: --dataset {dataset} is not the data set the model was trained on ({trained_on}); the "
              f"metrics compare it with {dataset}", file=sys.stderr)
    dataset = dataset or trained_on
    if dataset is None:
        raise EvaluationError("--dataset: required (the model does not say which data set it was trained on)")
    data_dir = data_dir or train_config.get("data_dir", "data")
    cache_dir = cache_dir or default_cache_dir(data_dir)
    image_size = image_size if image_size is not None else train_config.get("image_size")
    channels = channels if channels is not None else train_config.get("channels")
    data = load_data(dataset, data_dir, image_size, channels)
    toy = data.kind == "toy"
    clf_path = classifier or classifier_path(cache_dir, dataset)
    chosen = choose_metrics(metrics, toy, clf_path, inception_weights)
    if not toy and tuple(model.sample_shape) != (data.channels, data.image_size, data.image_size):
        raise EvaluationError(f"--dataset: {dataset} holds {data.channels}x{data.image_size}x{data.image_size} "
                              f"images but the model makes {tuple(model.sample_shape)}")
    # the Inception weights are read (and refused if unsafe or wrong) before the sampling, not after it
    inception = M.InceptionMetrics(inception_weights, device=device) if {"fid", "is"} & set(chosen) else None
    run = timed_sample(model, T, n, seed, batch_size, device, guidance, ddim, None if dtype == "fp32" else dtype,
                       truncation, partial)
    x, labels = run.pop("samples"), run.pop("labels")
    results = scores(x, chosen, data, dataset, clf_path, inception, cache_dir, device, seed, labels=labels)
    if partial:
        remove_draw(partial)
    record = {"checkpoint": source, "kind": "ddgan" if hasattr(model, "generator") else "ddpm",
              "dataset": dataset, "n": n, "seed": seed, "guidance": guidance, "ddim": ddim, "truncation": truncation,
              "dtype": dtype or "fp32", "metrics": results,
              "speed": run, "device": torch.cuda.get_device_name(device) if torch.device(device).type == "cuda"
              else "cpu", "machine": machine_label(device), "torch": torch.__version__,
              "date": datetime.date.today().isoformat()}
    if keep_samples:
        record["samples"] = x
    return record


def summary(record: Dict[str, Any]) -> str:
    m, s = record["metrics"], record["speed"]
    parts = []
    for key in ("FID", "IS", M.FID_DOM, M.FID_DOM_BALANCED, M.PRECISION_DOM, M.RECALL_DOM, M.IS_DOM, "classes",
                M.LABEL_ACCURACY, "modes_covered", "high_quality", "spread", "offset", "sliced_wasserstein", "mmd2"):
        if key not in m:
            continue
        if key == "modes_covered":
            parts.append(f"modes {m[key]}/{m['num_modes']}")
        elif key == "classes":
            parts.append(f"classes {m[key]}/{len(m['class-shares'])} (smallest share {m['class-min-share']:.3f})")
        elif key in ("IS", M.IS_DOM):
            parts.append(f"{key} {m[key]:.3f}±{m[key + '-std']:.3f}")
        else:
            parts.append(f"{key} {m[key]:.4g}")
    name = record["checkpoint"] or "model"
    return (f"{name} [{record['kind']} T={s['T']}, n={record['n']}, {record['dataset']}]: " + ", ".join(parts)
            + f" | {s['images_per_s']:.1f} images/s, {s['nfe_per_image']} NFE/image ({record['device']})")


def train_domain_classifier(dataset: str, data_dir: str, out: str, epochs: int, seed: int, device,
                            image_size: Optional[int] = None, channels: Optional[int] = None) -> str:
    _check_seed(seed)
    device = _device(device)
    data = load_data(dataset, data_dir, image_size, channels)
    if data.kind != "image" or not data.num_classes:
        raise EvaluationError(f"--dataset: a domain classifier needs a labelled image data set, not {dataset!r}")
    images = images_at(data, slice(None))
    labels = data.labels if data.labels is not None else torch.tensor([data[i][1] for i in range(len(data))])
    start = time.time()
    clf = M.train_classifier(images, labels, data.num_classes, epochs=epochs, seed=seed, device=device,
                             dataset=dataset, verbose=True)
    clf.save(out)
    print(f"classifier for {dataset}: held-out accuracy {clf.heldout_accuracy:.4f}, trained in "
          f"{time.time() - start:.0f} s; saved to {out}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m fastddgan.evaluate", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a fastddgan checkpoint (.pt) or export folder")
    p.add_argument("--metrics", default="auto", help="comma-separated: fid,is,fid-dom,is-dom,toy (default: auto)")
    p.add_argument("--n", type=int, default=10000, help="number of samples (default: 10000)")
    p.add_argument("--T", "-T", type=int, default=None, help="sampling steps (default: the model's T)")
    p.add_argument("--batch-size", type=int, default=500, help="sampling batch (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance weight (default: 0)")
    p.add_argument("--ddim", action="store_true", help="DDPM: deterministic DDIM steps")
    p.add_argument("--truncation", type=float, default=1.0,
                   help="DDGAN: latent z ~ N(0, psi^2 I), psi < 1 trades variety for fidelity (default: 1)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="fp32",
                   help="autocast dtype of the network calls (default: fp32). On CPUs with bf16 instructions bf16 "
                   "sampled 1.4-2.3x faster (DDGAN T=4: the same FID-dom; DDPM 50 steps: 3.5%% worse); slower "
                   "elsewhere: benchmarks/results/cpu-sampling-options/")
    p.add_argument("--dataset", help="data set of the reference statistics (default: the run's)")
    p.add_argument("--data-dir", help="where the data set is (default: the run's, else data)")
    p.add_argument("--cache-dir", help="reference statistics and classifiers (default: DATA_DIR/fastddgan-cache)")
    p.add_argument("--inception-weights", help="TF-Inception weights file (weights-inception-2015-12-05-"
                   "6726825d.pth) for machines without internet")
    p.add_argument("--classifier", help="domain classifier file (default: CACHE_DIR/classifier-DATASET.pt)")
    p.add_argument("--train-classifier", action="store_true",
                   help="train the domain classifier of --dataset (on one CPU thread: the same file whatever the "
                   "core count)")
    p.add_argument("--epochs", type=int, default=6, help="--train-classifier: epochs (default: 6)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--image-size", type=int, help="side of the square images of a folder:PATH data set (default: "
                   "the training run's; required with --train-classifier)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 channels of a folder:PATH data set "
                   "(default: the training run's, else 3)")
    p.add_argument("--out", help="write the JSON record here")
    p.add_argument("--partial", metavar="FOLDER",
                   help="keep the draw's finished chunks (--batch-size images each) in this folder, so that the same "
                        "command run again after an interruption continues where it stopped; removed once scored")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.train_classifier:
            if not args.dataset:
                raise EvaluationError("--dataset: required with --train-classifier")
            data_dir = args.data_dir or "data"
            out = args.classifier or classifier_path(args.cache_dir or default_cache_dir(data_dir), args.dataset)
            train_domain_classifier(args.dataset, data_dir, out, args.epochs, args.seed, args.device,
                                    args.image_size, args.channels)
            return 0
        if not args.checkpoint:
            raise EvaluationError("checkpoint: required (or --train-classifier)")
        if args.out:
            check_writable(args.out, "--out")  # before the sampling, whose result would be lost
        if args.partial:
            check_partial_folder(args.partial, "--partial")
        record = evaluate(args.checkpoint, metrics=args.metrics, n=args.n, T=args.T, seed=args.seed,
                          batch_size=args.batch_size, dataset=args.dataset, data_dir=args.data_dir,
                          cache_dir=args.cache_dir, inception_weights=args.inception_weights,
                          classifier=args.classifier, guidance=args.guidance, ddim=args.ddim, device=args.device,
                          image_size=args.image_size, channels=args.channels, dtype=args.dtype,
                          truncation=args.truncation, partial=args.partial)
    except (EvaluationError, DataNotFoundError, M.InceptionWeightsNotFound, FileNotFoundError, ValueError) as err:
        print(f"python -m fastddgan.evaluate: error: {err}", file=sys.stderr)
        return 2
    record["command"] = "python -m fastddgan.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    print(summary(record))
    if args.out:
        try:
            atomic_write_json(args.out, record)
        except OSError as err:
            print(f"python -m fastddgan.evaluate: error: --out: cannot write {args.out!r} ({err.strerror or err})",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
