"""The code panels' comments in the visitor's language (issue #25). A panel's code is generated in English (the API
returns it so, and the tests read it); in another language each comment whose words are a catalogue entry's English
is replaced by that entry in the language. An entry may hold {values} (a number or a name the generator wrote into
the comment): its English is matched as a pattern and the values are carried over. The code itself, and comments
not listed here, stay as they are. tests/test_code_comments.py checks that every entry still matches a comment the
generators write (a reworded comment would otherwise quietly stay English).
"""
from __future__ import annotations

import re
import string
from functools import lru_cache

from core.i18n import DEFAULT, N_, catalogue, current_language, t

# The comments the Data, Fine-tune, Ensembles, Compression, Classify, Autoencoder, GAN and Look inside panels write,
# by their catalogue keys
KEYS = (
    # Fine-tune (training/finetuning/finetune_code.py, training/plain.py)
    N_("code.ft.run"), N_("code.ft.data_digits"), N_("code.ft.shuffle_once"), N_("code.ft.in_unit_range"),
    N_("code.ft.as_mnist"), N_("code.ft.split_80_20"), N_("code.ft.model"), N_("code.ft.model_hub"),
    N_("code.ft.residual"), N_("code.ft.torchvision_names"), N_("code.ft.pretrained"), N_("code.ft.new_head"),
    N_("code.ft.trainable"), N_("code.ft.loop"), N_("code.ft.grid"), N_("code.ft.expected_stats"),
    N_("code.ft.evaluate"), N_("code.ft.global_rng"), N_("code.ft.generator"), N_("code.ft.affine_each"),
    N_("code.ft.keep_best"), N_("code.ft.stages"), N_("code.ft.worse_stage2"), N_("code.ft.save"),
    N_("code.ft.data_mnist5k"), N_("code.ft.split_counts"), N_("code.ft.data_zip"), N_("code.ft.data_zip_split"),
    N_("code.ft.not_images"), N_("code.ft.upright"), N_("code.ft.one_folder"), N_("code.ft.data_tab_steps"),
    N_("code.ft.global_rng_augment"), N_("code.ft.shuffling"), N_("code.ft.data_download"), N_("code.ft.to_input"),
    # Compression (training/compression/compress_code.py)
    N_("code.compress.architectures"), N_("code.compress.loop"), N_("code.compress.normalisation"),
    N_("code.compress.rng_resume"), N_("code.compress.mixup_targets"), N_("code.compress.affine_each"),
    N_("code.compress.probability_targets"), N_("code.compress.normalised_batch"), N_("code.compress.int8"),
    N_("code.compress.int8_cpu"), N_("code.compress.observers"), N_("code.compress.pruning"),
    N_("code.compress.permanent"), N_("code.compress.train_mode"), N_("code.compress.next_bn"),
    N_("code.compress.flatten"), N_("code.compress.distillation"), N_("code.compress.base"),
    N_("code.compress.teacher"), N_("code.compress.calibration"), N_("code.compress.int8_static"),
    N_("code.compress.int8_dynamic"), N_("code.compress.bf16"), N_("code.compress.magnitude"),
    N_("code.compress.channels_kept"), N_("code.compress.students"), N_("code.compress.mixup_teacher"),
    N_("code.compress.cross_entropy"), N_("code.compress.files"), N_("code.compress.as_in_table"),
    # Ensembles (training/ensembles/ensemble_code.py)
    N_("code.ens.stacking_sklearn"), N_("code.ens.plain"), N_("code.ens.held_out"), N_("code.ens.held_out_2"),
    N_("code.ens.architectures"), N_("code.ens.combiners"), N_("code.ens.sklearn_import"), N_("code.ens.recorded"),
    N_("code.ens.in_turn"), N_("code.ens.zoo_members"), N_("code.ens.bagging"), N_("code.ens.boosting"),
    N_("code.ens.chance"), N_("code.ens.test_probs"), N_("code.ens.holdout_probs"), N_("code.ens.accuracy"),
    # Data (training/resample.py, training/data/transforms.py, ui/data.py)
    N_("code.data.subset"), N_("code.data.per_class"), N_("code.data.subset_shapes"), N_("code.data.seeded"),
    N_("code.data.as_it_is"), N_("code.data.short_run"), N_("code.data.rare_more_often"),
    N_("code.data.or_dataloader"), N_("code.data.with_replacement"), N_("code.data.smote"),
    N_("code.data.synthetic"), N_("code.data.example_photo"), N_("code.data.example_shape"),
    N_("code.data.seed"), N_("code.data.draws"), N_("code.data.your_picture"), N_("code.data.on_white"),
    N_("code.data.onehot_sklearn"), N_("code.data.training_split"),
    # Classify (zoo/classify.py, zoo/standalone.py; the model's comments are Fine-tune's)
    N_("code.classify.preprocessing"), N_("code.classify.thins"), N_("code.classify.safe_picture"),
    N_("code.classify.same_tensor"), N_("code.classify.transparent"), N_("code.classify.on_white"),
    N_("code.classify.invert"), N_("code.classify.mnist_format"), N_("code.classify.no_grey"),
    N_("code.classify.bounding_box"), N_("code.classify.longest_side"), N_("code.classify.shift"),
    N_("code.classify.safetensors"), N_("code.classify.mean_std"), N_("code.classify.timm"),
    # Autoencoder (ui/autoencoder.py, zoo/standalone.py)
    N_("code.ae.model"), N_("code.ae.seeded"), N_("code.ae.noise"), N_("code.ae.code"), N_("code.ae.reconstruction"),
    N_("code.ae.psnr"), N_("code.ae.pca"), N_("code.ae.pca_2"), N_("code.ae.map_point"),
    # GAN (ui/gan.py, zoo/standalone.py)
    N_("code.gan.models"), N_("code.gan.noise"), N_("code.gan.truncation"), N_("code.gan.rounds"),
    N_("code.gan.labels"), N_("code.gan.belief"), N_("code.gan.varies"), N_("code.gan.projection"),
    N_("code.gan.logits"), N_("code.gan.d_range"), N_("code.gan.generator"), N_("code.gan.helpers"),
    N_("code.gan.redraw"), N_("code.gan.ends"), N_("code.gan.ends_2"), N_("code.gan.path"), N_("code.gan.embeddings"),
    # Look inside (look_inside/plain_code.py)
    N_("code.inspect.layer_names"), N_("code.inspect.clone"), N_("code.inspect.top_channels"),
    N_("code.inspect.dead"), N_("code.inspect.captum"), N_("code.inspect.predicted"), N_("code.inspect.target_layer"),
    N_("code.inspect.overlay"), N_("code.inspect.max_colour"), N_("code.inspect.matplotlib"),
    N_("code.inspect.trained"), N_("code.inspect.histograms"), N_("code.inspect.filters"),
    N_("code.inspect.random"), N_("code.inspect.vs_trained"), N_("code.inspect.inf"), N_("code.inspect.torchinfo"),
    N_("code.inspect.no_weights"),
)
_COMMENT = re.compile(r"(?:^|(?<=\s))#\s(.*?)\s*$")   # a comment: '#' at the line's start or after a space


@lru_cache(maxsize=1)
def patterns() -> tuple[tuple[re.Pattern, str], ...]:
    """(the English of each entry as a pattern, its key): {name} matches the value the generator wrote."""
    out = []
    for key in KEYS:
        regex = ""
        for literal, name, _spec, _conversion in string.Formatter().parse(catalogue(DEFAULT)[key]):
            regex += re.escape(literal) + (f"(?P<{name}>.+?)" if name else "")
        out.append((re.compile(regex), key))
    return tuple(out)


def comment_key(text: str) -> tuple[str, dict] | None:
    """(key, values) of the entry whose English is this comment's text, or None."""
    for pattern, key in patterns():
        m = pattern.fullmatch(text)
        if m:
            return key, m.groupdict()
    return None


def translate(code: str | None, language: str | None = None) -> str | None:
    """A panel's code with its listed comments in `language` (None: the request's); English as it is."""
    language = language or current_language()
    if language == DEFAULT or not code:
        return code
    lines = []
    for line in code.split("\n"):
        m = _COMMENT.search(line)
        found = comment_key(m.group(1)) if m else None
        if found:
            key, values = found
            line = line[:m.start(1)] + t(key, language, **values)
        lines.append(line)
    return "\n".join(lines)
