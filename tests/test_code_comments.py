"""The code panels' comments in Chinese (issue #25, ui/code_comments.py): every listed comment is still one the
generators write (a reworded comment would otherwise quietly stay English), and translating touches comments only."""
from __future__ import annotations

import re

import numpy as np


def _panels(tmp_path) -> dict[str, str]:
    """The code of the Data, Fine-tune, Ensembles, Compression panels (over the settings that write each comment) and
    the model tabs' panels."""
    from PIL import Image

    from training.compression.compress import LabConfig
    from training.compression.compress_code import compress_code
    from training.ensembles.ensemble import EnsembleConfig
    from training.ensembles.ensemble_code import ensemble_code
    from training.finetuning.finetune_code import finetune_code
    from training.finetuning.finetune_config import FinetuneConfig
    from training.resample import resample_code
    from ui import data

    counts = [400] * 5 + [20] * 3 + [400] * 2
    codes = {f"finetune {t}": finetune_code(FinetuneConfig(target=t, augment="data-tab" if t == "zip" else "affine"))
             for t in ("digits", "mnist5k", "zip", "MNIST", "CIFAR-10")}
    codes["finetune resnet18"] = finetune_code(FinetuneConfig(model="resnet18"))
    codes["compress"] = compress_code(LabConfig())
    codes["ensemble"] = ensemble_code(EnsembleConfig(zoo_members=("resnet_digits",)))
    codes.update({f"resample {m}": resample_code(counts, m, 60) for m in ("none", "oversample", "bootstrap", "smote")})
    picture = tmp_path / "picture.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(picture)
    codes["augment example"] = data.augment.__wrapped__()[2]
    codes["augment upload"] = data.augment.__wrapped__(str(picture))[2]
    codes["one-hot"] = data.one_hot.__wrapped__()[3]
    codes["dataloader"] = data.dataloader.__wrapped__()[2]
    codes.update(_model_panels())
    return codes


def _model_panels() -> dict[str, str]:
    """The code of the Classify, Autoencoder, GAN and Look inside panels."""
    from look_inside import plain_code
    from look_inside.activations import graph_nodes
    from ui import autoencoder, gan
    from zoo import get_model
    from zoo.classify import reproduce_code

    relu = next(n for n in graph_nodes(get_model("resnet_digits", weights=None)) if n.name == "relu")
    return {"classify digits": reproduce_code("resnet_digits"), "classify vgg16": reproduce_code("vgg16"),
            "autoencoder": autoencoder._code(16, "ae_digits_16", 0.1),
            "autoencoder map": autoencoder._map_code(0.5, 0.5),
            "gan": gan.gan_sample.__wrapped__(0, 8, "3", 0.7)[3],
            "gan interpolation": gan._interpolate(0, 1, "3", "8", 4, 0.0)[2],
            "activations": plain_code.activation_code("resnet_digits", "relu", relu.module, "digits"),
            "attribution": plain_code.attribution_code("resnet_digits", "layer2.0", None, "digits"),
            "weights": plain_code.weights_code("resnet_digits", None, 1e-3),
            "compare": plain_code.compare_code("resnet_digits", "random init (seed 0)", "trained", 0, uploaded=False),
            "summary": plain_code.summary_code("resnet_digits", (1, 1, 28, 28), 4)}


def test_every_listed_comment_is_written_and_only_comments_change(tmp_path):
    from ui import code_comments

    codes = _panels(tmp_path)
    matched = set()
    for code in codes.values():
        for line in code.split("\n"):
            m = re.search(r"(?:^|(?<=\s))#\s(.*?)\s*$", line)
            found = code_comments.comment_key(m.group(1)) if m else None
            if found:
                matched.add(found[0])
    assert sorted(set(code_comments.KEYS) - matched) == [], "entries no panel writes any more: reword them"
    for name, code in codes.items():
        zh = code_comments.translate(code, "zh")
        assert code_comments.translate(code, "en") == code
        before, after = code.split("\n"), zh.split("\n")
        assert len(before) == len(after), name
        for a, b in zip(before, after):          # a changed line keeps its code up to the comment
            if a != b:
                assert b.startswith(a[:a.index("# ") + 2]) and re.search(r"[\u4e00-\u9fff]", b), (name, a, b)
    assert "# 第 1 阶段只训练新的分类头" in code_comments.translate(codes["finetune digits"], "zh")
