"""Dev metrics: accuracy, entity F1 over BIO tags (seqeval's default, exact spans), SQuAD exact match and F1.

Small enough to write here rather than add seqeval or evaluate as dependencies; each follows the reference
definition named in its docstring.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Sequence


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    if not labels:
        return 0.0
    return sum(int(p == y) for p, y in zip(predictions, labels, strict=True)) / len(labels)


def f1_binary(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the ``positive`` class (scikit-learn's ``f1_score`` default, GLUE's MRPC and QQP metric); 0 when
    there is neither a predicted nor a true positive."""
    pairs = list(zip(predictions, labels, strict=True))
    tp = sum(p == positive and y == positive for p, y in pairs)
    fp = sum(p == positive and y != positive for p, y in pairs)
    fn = sum(p != positive and y == positive for p, y in pairs)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_correlation(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation coefficient, multiclass (Gorodkin's R_K, as scikit-learn's ``matthews_corrcoef``;
    GLUE's CoLA metric); 0 when either side has a single class."""
    classes = sorted(set(predictions) | set(labels))
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    confusion = [[0] * k for _ in range(k)]
    for p, y in zip(predictions, labels, strict=True):
        confusion[index[y]][index[p]] += 1
    t = [sum(row) for row in confusion]  # true counts per class
    p_ = [sum(confusion[i][j] for i in range(k)) for j in range(k)]  # predicted counts
    c, s = sum(confusion[i][i] for i in range(k)), sum(t)
    cov_yp = c * s - sum(a * b for a, b in zip(t, p_, strict=True))
    cov_pp = s * s - sum(b * b for b in p_)
    cov_yy = s * s - sum(a * a for a in t)
    return cov_yp / math.sqrt(cov_pp * cov_yy) if cov_pp and cov_yy else 0.0


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r (scipy's ``pearsonr``; STS-B's metric with Spearman's); nan for a constant side."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    n = len(x)
    dx, dy = [a - sum(x) / n for a in x], [b - sum(y) / n for b in y]
    sx, sy = max(map(abs, dx)), max(map(abs, dy))  # scaled first, as scipy: no underflow in the squares
    if not sx or not sy:
        return float("nan")
    dx, dy = [a / sx for a in dx], [b / sy for b in dy]
    norm = math.sqrt(sum(a * a for a in dx) * sum(b * b for b in dy))
    r = sum(a * b for a, b in zip(dx, dy, strict=True)) / norm
    return max(-1.0, min(1.0, r))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank (scipy's ``rankdata``)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            result[i] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the ranks (scipy's ``spearmanr``)."""
    return pearson(ranks(x), ranks(y))


def majority_accuracy(train_labels: Sequence[int], dev_labels: Sequence[int]) -> float:
    """Dev accuracy of always predicting the most frequent training label: the score to beat."""
    if not train_labels or not dev_labels:
        return 0.0
    majority = collections.Counter(train_labels).most_common(1)[0][0]
    return accuracy([majority] * len(dev_labels), dev_labels)


def entropy(labels: Sequence[int | bool]) -> float:
    """Entropy (nats) of the labels' empirical distribution: the cross-entropy loss of a model that has
    learned only how often each label occurs, and so the level a classifier's loss must fall below."""
    counts = collections.Counter(labels)
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values()) if total else 0.0


def bio_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) spans of a BIO sequence; an I- without a matching B- starts a span (seqeval's
    default, non-strict mode)."""
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if kind is not None and (prefix in ("O", "B") or label != kind):
            spans.add((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = label, i
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over exactly matching entity spans (seqeval's classification report)."""
    tp = n_pred = n_gold = 0
    for sentence, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        gs = {(sentence, *s) for s in bio_spans(g)}
        ps = {(sentence, *s) for s in bio_spans(p)}
        tp, n_pred, n_gold = tp + len(gs & ps), n_pred + len(ps), n_gold + len(gs)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_scores(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of a prediction against its gold answers, the best over the answers (SQuAD v1.1)."""
    pred = normalize_answer(prediction)
    best_em = best_f1 = 0.0
    for answer in answers:
        gold = normalize_answer(answer)
        best_em = max(best_em, float(pred == gold))
        p_tokens, g_tokens = pred.split(), gold.split()
        common = collections.Counter(p_tokens) & collections.Counter(g_tokens)
        same = sum(common.values())
        if same:
            precision, recall = same / len(p_tokens), same / len(g_tokens)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
        elif not p_tokens and not g_tokens:
            best_f1 = max(best_f1, 1.0)
    return best_em, best_f1


def squad_v2(predictions: dict[str, str], no_answer_odds: dict[str, float],
             answers: dict[str, Sequence[str]], threshold: float = 1.0) -> dict[str, float]:
    """SQuAD v2.0's official scores (evaluate-v2.0.py), in percent: ``exact`` and ``f1`` (an empty prediction
    is "no answer", right for a question without answers), the same over the answerable (``HasAns_``) and
    unanswerable (``NoAns_``) questions, and ``best_exact`` / ``best_f1`` at the no-answer threshold on
    ``no_answer_odds`` that maximises each (with that threshold). ``threshold`` is the official script's
    ``na_prob_thresh``: a question whose odds exceed it counts as answered "no answer"."""
    exact_raw, f1_raw, has_answer = {}, {}, {}
    for qid, gold in answers.items():
        gold = [a for a in gold if normalize_answer(a)] or [""]
        has_answer[qid] = gold != [""]
        exact_raw[qid], f1_raw[qid] = squad_scores(predictions.get(qid, ""), gold)

    def thresholded(raw: dict[str, float]) -> dict[str, float]:
        return {q: float(not has_answer[q]) if no_answer_odds.get(q, 0.0) > threshold else s
                for q, s in raw.items()}

    def mean(scores: dict[str, float], qids: list[str]) -> float:
        return 100.0 * sum(scores[q] for q in qids) / len(qids) if qids else 0.0

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    qids = list(answers)
    result = {"exact": mean(exact, qids), "f1": mean(f1, qids), "total": float(len(qids))}
    for prefix, chosen in (("HasAns", [q for q in qids if has_answer[q]]),
                           ("NoAns", [q for q in qids if not has_answer[q]])):
        if chosen:
            result.update({f"{prefix}_exact": mean(exact, chosen), f"{prefix}_f1": mean(f1, chosen),
                           f"{prefix}_total": float(len(chosen))})
    for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
        result[f"best_{name}"], result[f"best_{name}_thresh"] = _best_threshold(
            predictions, raw, no_answer_odds, has_answer)
    return result


def _best_threshold(predictions: dict[str, str], raw: dict[str, float], odds: dict[str, float],
                    has_answer: dict[str, bool]) -> tuple[float, float]:
    """evaluate-v2.0.py's find_best_thresh: predict "no answer" for every question whose odds exceed a
    threshold; the best score over the thresholds at each question's odds."""
    score = best = sum(1 for q in raw if not has_answer[q])
    threshold = 0.0
    for qid in sorted(odds, key=odds.__getitem__):
        if qid not in raw:
            continue
        if has_answer[qid]:
            score += raw[qid]
        elif predictions.get(qid):
            score -= 1
        if score > best:
            best, threshold = score, odds[qid]
    return 100.0 * best / max(1, len(raw)), threshold


def squad(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 in [0, 1] over a data set."""
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    scores = [squad_scores(p, a) for p, a in zip(predictions, answers, strict=True)]
    n = len(scores)
    return {"exact_match": sum(s[0] for s in scores) / n, "f1": sum(s[1] for s in scores) / n}
