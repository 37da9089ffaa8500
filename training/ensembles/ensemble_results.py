"""What is done with a built ensemble (training/ensembles/ensemble.py): its accuracy table, the test digits its members
disagree on, every member's vote for one input, the result as plain data between the job worker and the
server, and the built ensembles this process keeps."""
from __future__ import annotations

import torch

from training.ensembles.combiners import combine_all
from training.ensembles.ensemble import EnsembleConfig, EnsembleResult, new_member
from training.compression.measure import predict_logits
from core.cache import LRUCache
from zoo.hub import load_state_strict
from zoo.registry import get_model


def table(res: EnsembleResult) -> list[list]:
    """Rows [name, kind, test accuracy %, weight, points above the best of its own members]: members first,
    then each combiner."""
    rows = [[n, k, round(a, 2), round(float(w), 3), None]
            for n, k, a, w in zip(res.names, res.kinds, res.member_acc(), res.weights)]
    best = res.combo_best_member()
    for name, acc in res.combo_acc().items():
        rows.append([name, "ensemble", round(acc, 2), None, round(acc - best[name], 2)])
    return rows


def disagreements(res: EnsembleResult, limit: int = 12) -> list[int]:
    """Test indices where the members do not all agree, hardest (most split votes) first."""
    preds = res.test_probs.argmax(-1)                           # (M, N)
    n_distinct = torch.tensor([len(set(preds[:, i].tolist())) for i in range(preds.shape[1])])
    agree = (preds == res.combos["average (all members)"].argmax(-1)).float().mean(0)
    idx = torch.nonzero(n_distinct > 1).flatten()
    order = agree[idx].argsort()
    return idx[order][:limit].tolist()


@torch.inference_mode()
def votes_for(res: EnsembleResult, x: torch.Tensor) -> tuple[list[list], dict[str, tuple[int, float]]]:
    """One image (1, 28, 28) in [0, 1]: each member's vote and confidence, and each combiner's answer."""
    probs = torch.stack([predict_logits(m, x.unsqueeze(0)).softmax(-1) for m in res.models])   # (M, 1, C)
    rows = [[n, int(p[0].argmax()), round(float(p[0].max()), 4)] for n, p in zip(res.names, probs)]
    combos = combine_all(probs, res.kinds, res.weights, res.alphas, res.stacker)
    return rows, {k: (int(v[0].argmax()), float(v[0].max())) for k, v in combos.items()}


_results: LRUCache = LRUCache(8)   # built ensembles per setting (votes on single inputs reuse them)


def export_result(res: EnsembleResult) -> dict:
    """An EnsembleResult as plain data + tensors (the job worker sends it to the server this way): the trained
    members as state dicts with their architecture, the stacker as its fitted coefficients."""
    kinds = res.kinds
    archs = []
    members = {}
    for i, (kind, m) in enumerate(zip(kinds, res.models)):
        if kind == "zoo":
            archs.append(res.names[i])
            continue
        archs.append(getattr(m, "_ensemble_arch", None))
        members[str(i)] = {k: v.detach().cpu() for k, v in m.state_dict().items()}
    st = res.stacker
    return {"names": res.names, "kinds": kinds, "archs": archs, "members": members, "test_probs": res.test_probs,
            "holdout_probs": res.holdout_probs, "test_y": res.test_y, "weights": res.weights, "alphas": res.alphas,
            "boost_errors": res.boost_errors, "combos": res.combos,
            "stacker": {"coef": torch.as_tensor(st.coef_), "intercept": torch.as_tensor(st.intercept_),
                        "classes": torch.as_tensor(st.classes_), "n_fit": int(getattr(st, "n_fit_", 0))}}


def import_result(d: dict) -> EnsembleResult:
    """export_result's inverse: member networks rebuilt and loaded strictly, zoo members from the zoo."""
    from sklearn.linear_model import LogisticRegression   # scikit-learn takes ~1 s to import: not at server start

    models = []
    for i, (kind, arch) in enumerate(zip(d["kinds"], d["archs"])):
        if kind == "zoo":
            models.append(get_model(arch).cpu().eval())
        else:
            m = new_member(arch)
            load_state_strict(m, d["members"][str(i)])
            models.append(m.eval())
    st = d["stacker"]
    meta = LogisticRegression(max_iter=1000)
    meta.coef_, meta.intercept_ = st["coef"].numpy(), st["intercept"].numpy()
    meta.classes_, meta.n_features_in_, meta.n_fit_ = st["classes"].numpy(), st["coef"].shape[1], st["n_fit"]
    res = EnsembleResult(list(d["names"]), list(d["kinds"]), d["test_probs"], d["holdout_probs"], d["test_y"],
                         d["weights"], list(d["alphas"]), list(d["boost_errors"]), meta, models)
    res.combos = dict(d["combos"])
    return res


def remember(cfg: EnsembleConfig, res: EnsembleResult) -> None:
    """Keep a built ensemble for votes on single inputs (/ensemble_votes) without building it again."""
    _results.put(cfg.key(), res)


def built_ensemble(cfg: EnsembleConfig) -> EnsembleResult | None:
    return _results.get(cfg.key())
