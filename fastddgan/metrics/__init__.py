"""Quality metrics: FID / IS (TF-Inception through torch-fidelity), FID-dom / IS-dom (a classifier trained on the
data set), and exact 2-D metrics for the toy mixtures.

    fid                  feature_stats, weighted_feature_stats, frechet_distance, RunningStats, save_stats, load_stats
    inception            InceptionMetrics (pool3 features + logits), inception_score, InceptionWeightsNotFound,
                         InceptionWeightsInvalid
    classifier           DomainClassifier: the domain classifier's network, features / logits, file
    classifier_training  train_classifier
    domain               fid_dom, fid_dom_balanced, class_balance_weights, is_dom, class_coverage, label_accuracy,
                         domain_precision_recall, domain_metrics ("FID-dom", "FID-dom-balanced", "IS-dom",
                         "classes", "precision-dom", "recall-dom", "label-accuracy")
    precision_recall     precision_recall: improved precision and recall (Kynkäänniemi et al. 2019) of any features
    toy2d                mode_coverage, high_quality_fraction, sliced_wasserstein, mmd, toy2d_metrics
    cache                real_stats (reference statistics cached per data set and feature), real_class_shares,
                         default_cache_dir, classifier_path
    choice               choose_metrics: the metric names python -m fastddgan.evaluate accepts, and its auto choice

torch-fidelity is imported only when an ``InceptionMetrics`` is built.
"""

from .cache import classifier_path, default_cache_dir, real_class_shares, real_stats
from .choice import ALL_METRICS, IMAGE_METRICS, choose_metrics
from .classifier import DomainClassifier
from .classifier_training import train_classifier
from .domain import (FID_DOM, FID_DOM_BALANCED, IS_DOM, LABEL_ACCURACY, PRECISION_DOM, RECALL_DOM,
                     class_balance_weights, class_coverage, domain_metrics, domain_precision_recall, fid_dom,
                     fid_dom_balanced, is_dom, label_accuracy)
from .fid import RunningStats, feature_stats, frechet_distance, load_stats, save_stats, weighted_feature_stats
from .inception import (WEIGHTS_ENV, WEIGHTS_FILE, WEIGHTS_URL, InceptionMetrics, InceptionWeightsInvalid,
                        InceptionWeightsNotFound, default_weights_path, inception_score, load_weights,
                        resolve_weights)
from .precision_recall import precision_recall
from .toy2d import high_quality_fraction, mmd, mode_coverage, sliced_wasserstein, toy2d_metrics

__all__ = [
    "feature_stats", "weighted_feature_stats", "frechet_distance", "RunningStats", "save_stats", "load_stats",
    "InceptionMetrics", "InceptionWeightsNotFound", "InceptionWeightsInvalid", "inception_score", "resolve_weights",
    "load_weights", "default_weights_path",
    "WEIGHTS_FILE", "WEIGHTS_URL", "WEIGHTS_ENV",
    "train_classifier", "DomainClassifier", "fid_dom", "fid_dom_balanced", "class_balance_weights", "is_dom",
    "class_coverage", "label_accuracy", "domain_metrics", "FID_DOM", "FID_DOM_BALANCED", "IS_DOM", "LABEL_ACCURACY",
    "domain_precision_recall",
    "precision_recall", "PRECISION_DOM", "RECALL_DOM",
    "mode_coverage", "high_quality_fraction", "sliced_wasserstein", "mmd", "toy2d_metrics",
    "real_stats", "real_class_shares", "default_cache_dir", "classifier_path", "choose_metrics", "IMAGE_METRICS",
    "ALL_METRICS",
]
