"""Five ways to combine the outputs of an ensemble's members, all on tensors (tested on hand-made logits):

* probability averaging: mean of softmax outputs, argmax;
* majority vote: each member votes its argmax; ties go to the class with the larger mean probability;
* weighted average: softmax outputs weighted by each member's held-out log-odds of being right;
* stacking (Wolpert 1992): a scikit-learn LogisticRegression on the members' log-probabilities, fitted
  ONLY on held-out member outputs (training/ensembles/ensemble.py: the last `holdout` *train* images), never on test;
* SAMME (Zhu et al. 2009, multi-class AdaBoost): members vote with weight
  alpha = log((1 - err) / err) + log(K - 1).
"""
from __future__ import annotations

import math

import torch

N_CLASSES = 10


def average(probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) member probabilities -> (N, C) mean probability."""
    return probs.mean(0)


def majority_vote(probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) -> (N,) the most voted class; a tie goes to the tied class with the highest mean prob."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).sum(0).float()  # (N, C)
    top = votes.max(1, keepdim=True).values
    tie_break = torch.where(votes == top, probs.mean(0), torch.full_like(votes, -1.0))
    return tie_break.argmax(1)


def weighted_average(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(M, N, C) and (M,) non-negative weights -> (N, C) weighted mean probability."""
    w = weights.float().clamp_min(0)
    if w.sum() <= 0:
        raise ValueError("weighted average needs at least one positive weight")
    return (probs * (w / w.sum()).view(-1, 1, 1)).sum(0)


def accuracy_weights(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member weight = log-odds of being right on (held-out) data, Laplace-smoothed, floored at 0."""
    correct = (probs.argmax(-1) == y).float().sum(1)
    acc = (correct + 1) / (probs.shape[1] + 2)
    return torch.log(acc / (1 - acc)).clamp_min(0)


def stacking_features(probs: torch.Tensor) -> "np.ndarray":  # noqa: F821
    """(M, N, C) -> (N, M*C) log-probabilities, the meta-classifier's input."""
    return probs.clamp_min(1e-6).log().permute(1, 0, 2).reshape(probs.shape[1], -1).numpy()


def fit_stacker(holdout_probs: torch.Tensor, holdout_y: torch.Tensor, C: float = 1.0):
    """Fit the meta-classifier on held-out member outputs (never test ones)."""
    from sklearn.linear_model import LogisticRegression   # scikit-learn takes ~1 s to import: only when stacking

    meta = LogisticRegression(C=C, max_iter=1000)
    meta.fit(stacking_features(holdout_probs), holdout_y.numpy())
    meta.n_fit_ = len(holdout_y)           # recorded so tests can check what it was fitted on
    return meta


def stack_predict(meta, probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) -> (N, C) meta-classifier probabilities."""
    p = torch.from_numpy(meta.predict_proba(stacking_features(probs))).float()
    out = torch.zeros(p.shape[0], N_CLASSES)
    out[:, torch.as_tensor(meta.classes_)] = p
    return out


def samme_alpha(err: float, n_classes: int = N_CLASSES) -> float:
    """SAMME's member weight; positive as long as the member beats chance (err < 1 - 1/K)."""
    err = min(max(err, 1e-10), 1 - 1e-10)
    return math.log((1 - err) / err) + math.log(n_classes - 1)


def samme_combine(probs: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """(M, N, C) and (M,) -> (N, C) alpha-weighted votes, normalised to sum to 1."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float()     # (M, N, C)
    s = (votes * alphas.float().view(-1, 1, 1)).sum(0)
    return s / s.sum(1, keepdim=True).clamp_min(1e-12)


def member_sets(kinds: list[str]) -> dict[str, list[int]]:
    """Which members each combiner combines (indices into the member list), in table order; combine_all
    computes exactly these combiners over exactly these members."""
    idx = {k: [i for i, kk in enumerate(kinds) if kk == k] for k in ("zoo", "bagged", "boosted")}
    everyone = list(range(len(kinds)))
    out = {"average (all members)": everyone, "majority vote (all members)": everyone,
           "weighted average (held-out log-odds)": everyone, "stacking (LogisticRegression on held-out)": everyone}
    if idx["zoo"]:
        out["average (zoo members)"] = idx["zoo"]
    if idx["bagged"]:
        out["bagging (average of bagged)"] = idx["bagged"]
    if idx["boosted"]:
        out["boosting (SAMME vote of boosted)"] = idx["boosted"]
    return out


def combine_all(probs: torch.Tensor, kinds: list[str], weights, alphas, stacker) -> dict[str, torch.Tensor]:
    """Every combiner's (N, C) output for member probabilities (M, N, C), each over its member_sets() members."""
    combiners = {
        "average (all members)": average,
        "majority vote (all members)": lambda p: torch.nn.functional.one_hot(majority_vote(p), p.shape[-1]).float(),
        "weighted average (held-out log-odds)": lambda p: weighted_average(p, weights),
        "stacking (LogisticRegression on held-out)": lambda p: stack_predict(stacker, p),
        "average (zoo members)": average,
        "bagging (average of bagged)": average,
        "boosting (SAMME vote of boosted)": lambda p: samme_combine(p, torch.tensor(alphas)),
    }
    return {name: combiners[name](probs[idx]) for name, idx in member_sets(kinds).items()}
