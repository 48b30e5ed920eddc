"""Metrics for the category head (shared by the trainer and ``bench/quality_category.py``).

The ``other`` threshold: the head's calibrated top probability must reach it for a class to
be given. It is chosen on dev (:func:`choose_threshold`) as the lowest value at which

* the photos it accepts are right at least :data:`TARGET_PRECISION` of the time, and
* at most :data:`NEG_PASS` of the held-out generated no-product images pass it,

so ``other`` costs as few real products as possible while a chart or texture is not given a
confident class. The temperature is fitted on dev first (NLL), so the threshold reads as a
probability.
"""
from __future__ import annotations

import numpy as np
import torch

from ml.category import CLASSES, OTHER

TARGET_PRECISION = 0.95
NEG_PASS = 0.05
_GRID = np.round(np.arange(0.30, 0.951, 0.01), 2)


@torch.no_grad()
def logits(head, feats: np.ndarray) -> np.ndarray:
    if len(feats) == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    return head(torch.as_tensor(np.asarray(feats, np.float32))).numpy()


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return 1.0
    best, best_t = np.inf, 1.0
    for t in np.arange(0.5, 4.01, 0.05):
        p = softmax(z, t)[np.arange(len(y)), y]
        nll = float(-np.log(np.clip(p, 1e-9, 1)).mean())
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def choose_threshold(p_dev: np.ndarray, y_dev: np.ndarray, p_neg: np.ndarray,
                     target: float = TARGET_PRECISION) -> float:
    conf, pred = p_dev.max(axis=1), p_dev.argmax(axis=1)
    neg_conf = p_neg.max(axis=1) if len(p_neg) else np.zeros(0)
    for t in _GRID:
        acc = conf >= t
        prec = float((pred[acc] == y_dev[acc]).mean()) if acc.any() else 1.0
        neg_ok = float((neg_conf >= t).mean()) <= NEG_PASS if len(neg_conf) else True
        if prec >= target and neg_ok:
            return float(t)
    return float(_GRID[-1])


def metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """top-1, per-class recall and the confusion matrix (rows = truth, columns = predicted,
    both over ``labels``; a prediction index == len(CLASSES) means ``other``)."""
    n = len(labels)
    cm = np.zeros((n, n), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[int(t), int(p)] += 1
    recall = {labels[i]: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None) for i in range(n)}
    total = int(cm.sum())
    return {"n": total, "top1": float(np.trace(cm) / total) if total else 0.0,
            "recall": recall, "support": {labels[i]: int(cm[i].sum()) for i in range(n)},
            "confusion": cm.tolist(), "labels": labels}


def with_other(p: np.ndarray, threshold: float) -> np.ndarray:
    pred = p.argmax(axis=1)
    return np.where(p.max(axis=1) >= threshold, pred, len(CLASSES))


def dev_report(head, fdev: list[np.ndarray], ydev: np.ndarray, neg_holdout: np.ndarray) -> dict:
    """Temperature, threshold and metrics on dev (view 0 = on white, view 1 = own background)."""
    labels = list(CLASSES) + [OTHER]
    white = np.stack([f[0] for f in fdev]) if fdev else np.zeros((0, 1), np.float32)
    z = logits(head, white)
    temp = fit_temperature(z, ydev)
    p = softmax(z, temp)
    p_neg = softmax(logits(head, neg_holdout), temp)
    thr = choose_threshold(p, ydev, p_neg)
    raw = metrics(ydev, p.argmax(axis=1), labels) if len(ydev) else metrics([], [], labels)
    gated = metrics(ydev, with_other(p, thr), labels) if len(ydev) else raw
    own = (metrics(ydev, softmax(logits(head, np.stack([f[1] for f in fdev])), temp).argmax(axis=1), labels)
           if fdev else raw)
    neg_conf = p_neg.max(axis=1) if len(p_neg) else np.zeros(0)
    summary = {"top1": raw["top1"], "top1_own_background": own["top1"], "n": raw["n"],
               "other_rate": float((with_other(p, thr) == len(CLASSES)).mean()) if len(ydev) else 0.0,
               "accepted_precision": _accepted_precision(p, ydev, thr),
               "negatives_passing": float((neg_conf >= thr).mean()) if len(neg_conf) else 0.0}
    return {"temperature": temp, "threshold": thr, "summary": summary, "dev": raw,
            "dev_with_other": gated, "dev_own_background": own}


def _accepted_precision(p: np.ndarray, y: np.ndarray, thr: float) -> float:
    acc = p.max(axis=1) >= thr
    return float((p.argmax(axis=1)[acc] == y[acc]).mean()) if acc.any() else 1.0


def table(m: dict, title: str) -> str:
    """A plain-text table: per-class support/recall, top-1, then the confusion matrix."""
    labels = m["labels"]
    rows = [title, f"top-1 {m['top1']:.3f} over {m['n']} photos", "",
            f"{'class':<14}{'n':>5}{'recall':>8}"]
    for lab in labels:
        if m["support"][lab]:
            rows.append(f"{lab:<14}{m['support'][lab]:>5}{m['recall'][lab]:>8.2f}")
    used = [i for i, lab in enumerate(labels)
            if m["support"][lab] or any(r[i] for r in m["confusion"])]
    short = [labels[i][:5] for i in used]
    rows += ["", "confusion (rows truth, columns predicted)", " " * 14 + "".join(f"{s:>6}" for s in short)]
    for i in used:
        if m["support"][labels[i]]:
            rows.append(f"{labels[i]:<14}" + "".join(f"{m['confusion'][i][j]:>6}" for j in used))
    return "\n".join(rows)
