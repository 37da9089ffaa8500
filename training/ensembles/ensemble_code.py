"""The plain-PyTorch code the Ensembles sub-tab shows for a run (its code panel, issue #26 item 2).

It runs where only torch, torchvision, safetensors, huggingface_hub, numpy and pillow are installed, plus
scikit-learn for the stacking meta-classifier (the panel says so): mnist5k and the zoo's weights are read from the Hub
(training.plain, zoo.standalone), the members' classes, the bagging and SAMME boosting of
training/ensembles/ensemble.py, the trainer's loop and every combiner of training/ensembles/combiners.py are written
out, so it prints the accuracy of every row of the tab's table (tests/test_snippets.py runs it with the project
unimportable).
"""
from __future__ import annotations

from training.ensembles import combiners
from training.ensembles.ensemble import EnsembleConfig
from training.plain import DATA_IMPORTS, data_source, train_imports, train_source
from zoo import get_spec
from zoo.digits import StudentCNN
from zoo.standalone import digits_classes, hub_file, joined_imports, source


def _arch_class(arch: str) -> str:
    return "StudentCNN" if arch == "small_cnn" else get_spec(arch).builder.__name__


def ensemble_code(cfg: EnsembleConfig) -> str:
    """Plain PyTorch for the ensemble this config builds, printing each member's and combiner's test accuracy."""
    archs = cfg.archs()
    classes = list(dict.fromkeys([get_spec(n).builder.__name__ for n in cfg.zoo_members]
                                 + [_arch_class(a) for a in archs if a != "small_cnn"]))
    class_src = "\n\n\n".join([digits_classes(c) for c in classes]
                              + ([source(StudentCNN)] if "small_cnn" in archs else []))
    zoo = ",\n        ".join(f'("{n}", {get_spec(n).builder.__name__}, '
                             f'{hub_file(get_spec(n).weights.repo_id, get_spec(n).weights.filename)})'
                             for n in cfg.zoo_members)
    arch_list = ", ".join(f'("{a}", {_arch_class(a)})' for a in archs)
    comb = source(("N_CLASSES", combiners.N_CLASSES), combiners.average, combiners.majority_vote,
                  combiners.weighted_average, combiners.accuracy_weights, combiners.stacking_features,
                  combiners.fit_stacker, combiners.stack_predict, combiners.samme_alpha, combiners.samme_combine,
                  combiners.member_sets, combiners.combine_all)
    imports = joined_imports(DATA_IMPORTS + train_imports(augment=True)
                             + ["import torch.nn as nn", "from safetensors.torch import load_model"])
    return f'''# Stacking's meta-classifier is scikit-learn's LogisticRegression (pip install scikit-learn);
# the rest is plain PyTorch: mnist5k and the zoo's weights from the Hub, the members trained here.
{imports}


{data_source("mnist5k")}

# the last {cfg.holdout} TRAIN images are held out: the weighted average's weights and the stacker are fitted on
# them, never on test images
n_fit = len(train_x) - {cfg.holdout}
fit_x, fit_y, hold_x, hold_y = train_x[:n_fit], train_y[:n_fit], train_x[n_fit:], train_y[n_fit:]


# ---- the members' architectures (this project's zoo/digits.py), written out
{class_src}


# ---- the training loop (training.trainer.train's, as the tab runs it)
{train_source(augment=True)}


@torch.no_grad()
def logits_of(model, x, batch_size=250):
    """The model's outputs for every image of x (N, 1, 28, 28) in [0, 1], normalised, in batches, eval mode."""
    model.eval()
    return torch.cat([model((x[i:i + batch_size] - MEAN) / STD) for i in range(0, len(x), batch_size)]).float()


# ---- the combiners (training/ensembles/combiners.py): SAMME's alpha below; the rest fitted on held-out images only
{comb}


STEPS, BATCH, LR, SEED = {cfg.steps}, {cfg.batch_size}, {cfg.lr}, {cfg.seed}
ARCHS = [{arch_list}]   # bagged and boosted members take these in turn


def train_member(k, idx, seed):
    """A fresh member of architecture k % len(ARCHS), trained STEPS steps on the fit images idx (seeded)."""
    torch.manual_seed(seed)
    model = ARCHS[k % len(ARCHS)][1]()
    epochs = max(1, math.ceil(STEPS / max(1, len(idx) // BATCH)))
    train(model, fit_x[idx], fit_y[idx], test_x[:0], test_y[:0], epochs=epochs, batch_size=BATCH, lr=LR,
          max_steps=STEPS, seed=seed)
    return model.cpu().eval()


names, kinds, models = [], [], []
# the zoo's trained members: weights as this project ships them (safetensors, on the Hub)
for name, cls, path in [
        {zoo}]:
    model = cls()
    load_model(model, path, strict=True)
    names.append(name)
    kinds.append("zoo")
    models.append(model.eval())

# bagging (Breiman 1996): each member on a bootstrap sample (n draws with replacement) of the fit images
for k in range({cfg.n_bagged}):
    g = torch.Generator().manual_seed(SEED * 1000 + k)
    idx = torch.randint(len(fit_x), (len(fit_x),), generator=g)
    models.append(train_member(k, idx, seed=SEED * 1000 + k))
    names.append(f"bagged #{{k + 1}} ({{ARCHS[k % len(ARCHS)][0]}}, {{STEPS}} steps)")
    kinds.append("bagged")

# boosting (SAMME with resampling): each round trains on a draw weighted by w, then up-weights its mistakes
w = torch.full((len(fit_x),), 1.0 / len(fit_x))
alphas = []
for k in range({cfg.n_boosted}):
    g = torch.Generator().manual_seed(SEED * 1000 + 500 + k)
    idx = torch.multinomial(w, len(fit_x), replacement=True, generator=g)
    model = train_member(k, idx, seed=SEED * 1000 + 500 + k)
    miss = (logits_of(model, fit_x).argmax(1) != fit_y).float()
    err = float((w * miss).sum() / w.sum())
    if err >= 1 - 1 / N_CLASSES:                      # no better than chance: SAMME stops here
        break
    a = samme_alpha(err)
    w = w * torch.exp(a * miss)
    w = w / w.sum()
    alphas.append(a)
    models.append(model)
    names.append(f"boosted #{{k + 1}} ({{ARCHS[k % len(ARCHS)][0]}}, alpha {{a:.2f}})")
    kinds.append("boosted")



P = torch.stack([logits_of(m, test_x).softmax(-1) for m in models])       # (members, 1000, 10) on the test split
H = torch.stack([logits_of(m, hold_x).softmax(-1) for m in models])       # (members, {cfg.holdout}, 10) held out
combos = combine_all(P, kinds, accuracy_weights(H, hold_y), alphas, fit_stacker(H, hold_y))
for name, p in zip(names, P):          # test accuracy of each member and each combiner, as in the table
    print(f"{{name}}: {{100 * (p.argmax(-1) == test_y).float().mean():.1f}}%")
for name, p in combos.items():
    print(f"{{name}}: {{100 * (p.argmax(-1) == test_y).float().mean():.1f}}%")
'''
