"""Binary classification metrics for an imbalanced task, and the validation-chosen threshold.

About a quarter of the comments are insults: accuracy flatters the constant "not toxic" predictor (0.74). We report
ranking quality without a threshold (ROC-AUC, the Kaggle competition's metric; PR-AUC, which weighs the rare class)
and the toxic-class F1 and macro-F1 at a threshold, computed by scikit-learn, the reference implementation.
"""
import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix, f1_score,
                             precision_recall_curve, precision_score, recall_score, roc_auc_score)


def binary_metrics(labels, toxic_probs, threshold: float = 0.5) -> dict:
    """All the quality metrics of one model on one split, at one decision threshold."""
    labels, toxic_probs = np.asarray(labels, dtype=int), np.asarray(toxic_probs, dtype=float)
    predictions = (toxic_probs >= threshold).astype(int)
    both_classes = len(np.unique(labels)) == 2
    tn, fp, fn, tp = confusion_matrix(labels, predictions, labels=[0, 1]).ravel()
    return {
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision": float(precision_score(labels, predictions, zero_division=0)),
        "recall": float(recall_score(labels, predictions, zero_division=0)),
        "f1": float(f1_score(labels, predictions, zero_division=0)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, toxic_probs)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(labels, toxic_probs)) if both_classes else float("nan"),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def best_f1_threshold(labels, toxic_probs) -> float:
    """The threshold that maximises the toxic-class F1 on these labels: validation only, or test labels would leak."""
    precision, recall, thresholds = precision_recall_curve(labels, toxic_probs)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
