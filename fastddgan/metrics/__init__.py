"""Quality metrics: FID / IS (TF-Inception through torch-fidelity), FID-dom / IS-dom (a classifier trained on the
data set), and exact 2-D metrics for the toy mixtures.

    fid          feature_stats, frechet_distance, RunningStats, save_stats, load_stats
    inception    InceptionMetrics (pool3 features + logits), inception_score, InceptionWeightsNotFound,
                 InceptionWeightsInvalid
    classifier   train_classifier, DomainClassifier, fid_dom, is_dom, domain_metrics ("FID-dom", "IS-dom")
    toy2d        mode_coverage, high_quality_fraction, sliced_wasserstein, mmd, toy2d_metrics

torch-fidelity is imported only when an ``InceptionMetrics`` is built.
"""

from .classifier import FID_DOM, IS_DOM, DomainClassifier, domain_metrics, fid_dom, is_dom, train_classifier
from .fid import RunningStats, feature_stats, frechet_distance, load_stats, save_stats
from .inception import (WEIGHTS_ENV, WEIGHTS_FILE, WEIGHTS_URL, InceptionMetrics, InceptionWeightsInvalid,
                        InceptionWeightsNotFound, default_weights_path, inception_score, load_weights,
                        resolve_weights)
from .toy2d import high_quality_fraction, mmd, mode_coverage, sliced_wasserstein, toy2d_metrics

__all__ = [
    "feature_stats", "frechet_distance", "RunningStats", "save_stats", "load_stats",
    "InceptionMetrics", "InceptionWeightsNotFound", "InceptionWeightsInvalid", "inception_score", "resolve_weights",
    "load_weights", "default_weights_path",
    "WEIGHTS_FILE", "WEIGHTS_URL", "WEIGHTS_ENV",
    "train_classifier", "DomainClassifier", "fid_dom", "is_dom", "domain_metrics", "FID_DOM", "IS_DOM",
    "mode_coverage", "high_quality_fraction", "sliced_wasserstein", "mmd", "toy2d_metrics",
]
