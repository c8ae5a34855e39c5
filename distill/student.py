"""Build a shallow BERT student from chosen layers of a deeper BERT.

DistilBERT (Sanh et al. 2019, arXiv:1910.01108, section 3) initialises its 6-layer student
"from the teacher by taking one layer out of two". The student then starts close to the
teacher's solution instead of from random weights, and training only has to repair what
removing the other layers broke. We let the user choose a named layer set (``LAYER_SETS``) or
any increasing list, so the choices can be compared.

Layers are numbered from 1, as the assignment writes them: layer 1 reads the embeddings and
the last layer feeds the pooler. In code, layer ``n`` lives at index ``n - 1`` of
``model.bert.encoder.layer``.

Two routes share one copying function (``_copy_encoder``):

- ``build_student(teacher, layers)``: everything comes from the fine-tuned teacher, its
  classification head included (the distillation route).
- ``build_student_from_base(path, layers)``: embeddings and layers come from a pretrained
  encoder that was never fine-tuned; the classifier is new, and so is the pooler when the
  checkpoint has none. The caller is told which modules are new so it can train them
  (the LoRA route).
"""
import copy
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from torch import nn
from transformers import AutoConfig, BertConfig, BertForSequenceClassification, BertModel

from distill import DistillError



def _odd(depth: int) -> list[int]:
    return list(range(1, depth + 1, 2))


def _even(depth: int) -> list[int]:
    return list(range(2, depth + 1, 2))


def _bottom(depth: int) -> list[int]:
    return list(range(1, depth // 2 + 1))


def _top(depth: int) -> list[int]:
    return list(range(depth - depth // 2 + 1, depth + 1))


def _distilbert(depth: int) -> list[int]:
    lower, upper = _bottom(depth), _top(depth)
    return [layer for layer in lower if layer % 2 == 1] + [layer for layer in upper if (depth - layer) % 2 == 0]


def _symmetric(depth: int) -> list[int]:
    kept = depth // 2
    return list(range(1, (kept + 1) // 2 + 1)) + list(range(depth - kept // 2 + 1, depth + 1))


# The named layer sets, each keeping half of a teacher of any depth; for 12 layers:
LAYER_SETS = {
    "odd": _odd,              # 1,3,5,7,9,11: one layer out of two, from the bottom
    "even": _even,            # 2,4,6,8,10,12: one layer out of two, up to the top
    # Sajjad et al. 2020 ("On the Effect of Dropping Layers of Pre-trained Transformer Models",
    # arXiv:2004.03844) drop whole blocks of a pretrained model before fine-tuning; dropping the
    # top layers cost the least, i.e. the bottom layers mattered most.
    "bottom": _bottom,        # 1-6: their "top-layer dropping", which cost the least
    "top": _top,              # 7-12: its opposite, "bottom-layer dropping"
    # What DistilBERT's extraction script copies (0-based 0,2,4,7,9,11): one of two, but keeping
    # both the bottom layer, which reads the embeddings, and the top one, which feeds the head.
    "distilbert": _distilbert,  # 1,3,5,8,10,12
    # Sajjad et al.'s "symmetric dropping" (the middle layers go): both ends in full. Chosen
    # because it tests the two reasons the README gives for odd against even at once, with no
    # gap at either end: the layers right after the embeddings, and the layers right before the
    # teacher's head, which it was fine-tuned to read.
    "symmetric": _symmetric,  # 1,2,3,10,11,12
}
LAYER_SPEC_HELP = (f"write a named set ({', '.join(LAYER_SETS)}) or increasing layer numbers from 1, "
                   f"like '1,4,7'")


def parse_layers(spec: str, teacher_layers: int) -> list[int]:
    """Turn a layer spec into the sorted, 1-based teacher layers the student keeps.

    A name of ``LAYER_SETS`` is computed for a teacher with ``teacher_layers`` layers: "odd" is
    layers 1, 3, 5, ... and "even" is layers 2, 4, 6, ... (for 12 layers: 1,3,5,7,9,11 and
    2,4,6,8,10,12), "bottom" and "top" its lower and upper half, and so on; anything else is
    read as a comma-separated list such as "1,4,7". See ``validate_layers`` for the rules.
    """
    if not isinstance(spec, str):
        raise DistillError(f"the layer spec must be a string, got {spec!r}; {LAYER_SPEC_HELP}")
    _check_depth(teacher_layers)
    name = spec.strip().lower()
    if name in LAYER_SETS:
        layers = LAYER_SETS[name](teacher_layers)
    elif not name:
        raise DistillError(f"the layer spec is empty; {LAYER_SPEC_HELP}")
    else:
        layers = [_parse_layer_number(piece, spec) for piece in name.split(",")]
    validate_layers(layers, teacher_layers)
    return layers


def _parse_layer_number(piece: str, spec: str) -> int:
    piece = piece.strip()
    if not re.fullmatch(r"-?[0-9]+", piece):
        raise DistillError(f"{piece!r} in the layer spec {spec!r} is not a layer number; {LAYER_SPEC_HELP}")
    return int(piece)


def _check_depth(teacher_layers: int) -> None:
    if isinstance(teacher_layers, bool) or not isinstance(teacher_layers, int) or teacher_layers < 1:
        raise DistillError(f"the teacher depth must be a positive number of layers, got {teacher_layers!r}")


def validate_layers(layers: Sequence[int], teacher_layers: int) -> None:
    """Reject a layer list that would not make a sensible student of this teacher.

    The list must be non-empty, every entry an integer from 1 to ``teacher_layers``, with no
    repeats, in increasing order. Order matters because of the residual stream: each layer
    adds its update to the vectors that the layers below it wrote, so teacher layer 7 was
    trained on what layers 1-6 made of the input. Running layer 7 before layer 4 (or running a
    layer twice, on its own output) would feed layers representations they never saw, and the
    student would start far from the teacher instead of close to it. Keeping the teacher's
    order keeps each copied layer's input as close as possible to what it was trained on.
    """
    _check_depth(teacher_layers)
    layers = list(layers)
    if not layers:
        raise DistillError(f"no layers selected: a student needs at least one encoder layer; {LAYER_SPEC_HELP}")
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise DistillError(f"layer {layer!r} in {layers} is not an integer; {LAYER_SPEC_HELP}")
        if not 1 <= layer <= teacher_layers:
            raise DistillError(f"layer {layer} in {layers} is out of range: the source model has layers "
                               f"1 to {teacher_layers} (numbered from 1)")
    repeated = [layer for layer, count in Counter(layers).items() if count > 1]
    if repeated:
        raise DistillError(f"layer {repeated[0]} appears more than once in {layers}: a layer run twice "
                           f"would read its own output, which it was never trained on")
    if layers != sorted(layers):
        raise DistillError(f"layers {layers} are not in increasing order: each layer was trained on the "
                           f"output of the layers below it, so the student must keep the teacher's order "
                           f"(use {sorted(layers)})")


def copy_encoder_layers(source_layers: nn.ModuleList, target_layers: nn.ModuleList,
                        layers: Sequence[int]) -> None:
    """Copy source layer ``layers[k]`` (1-based) into target slot ``k``, for every ``k`` in order.

    ``load_state_dict`` copies the values into the target's own tensors, so afterwards the two
    models share no storage: training the student never changes the teacher.
    """
    validate_layers(layers, len(source_layers))
    if len(target_layers) != len(layers):
        raise DistillError(f"the target has {len(target_layers)} layers but {len(layers)} were chosen: {list(layers)}")
    for slot, layer in enumerate(layers):
        target_layers[slot].load_state_dict(source_layers[layer - 1].state_dict())


def _student_config(source_config: BertConfig, layers: Sequence[int]) -> BertConfig:
    """The source's architecture with only ``len(layers)`` layers (a copy: the source keeps its own)."""
    config = copy.deepcopy(source_config)
    config.num_hidden_layers = len(layers)
    return config


def _copy_encoder(source: BertModel, student: BertForSequenceClassification, layers: Sequence[int], *,
                  copy_pooler: bool) -> None:
    """Copy the embeddings, the chosen layers in order and, if asked, the pooler into the student."""
    student.bert.embeddings.load_state_dict(source.embeddings.state_dict())
    copy_encoder_layers(source.encoder.layer, student.bert.encoder.layer, layers)
    if copy_pooler:
        student.bert.pooler.load_state_dict(source.pooler.state_dict())


def build_student(teacher: BertForSequenceClassification, layers: Sequence[int]) -> BertForSequenceClassification:
    """A new ``len(layers)``-layer classifier initialised from the fine-tuned ``teacher``.

    The student gets a copy of the teacher's embeddings, of teacher layers ``layers`` (1-based,
    in order), of its pooler and of its classification head, so before any training it
    already predicts roughly like the teacher. It lives on the teacher's device in the
    teacher's dtype (so the copy is exact) and shares no tensor with it.
    """
    if not isinstance(teacher, BertForSequenceClassification):
        raise DistillError(f"the teacher must be a BertForSequenceClassification, got {type(teacher).__name__}")
    validate_layers(layers, teacher.config.num_hidden_layers)
    student = BertForSequenceClassification(_student_config(teacher.config, layers))
    student.to(device=teacher.device, dtype=teacher.dtype)
    _copy_encoder(teacher.bert, student, layers, copy_pooler=True)
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student


class StudentFromBase(NamedTuple):
    """A student built from a pretrained base, and the modules that were freshly initialised.

    ``new_head_modules`` are names for ``model.get_submodule``, e.g. ``("bert.pooler", "classifier")``:
    they hold random weights and must be trained (never frozen) for the model to work.
    """
    model: BertForSequenceClassification
    new_head_modules: tuple[str, ...]


def build_student_from_base(base_path: str | os.PathLike, layers: Sequence[int],
                            num_labels: int = 2) -> StudentFromBase:
    """A classifier whose embeddings and layers ``layers`` come from a pretrained (not fine-tuned) encoder.

    The classifier is always new. The pooler is copied when the checkpoint has pretrained
    pooler weights, and is new otherwise (the embedded e5-small base has none): a random pooler
    that the caller then froze would silently cripple the model, so the new modules are
    returned by name. This takes a path, not a loaded model, because only loading reveals
    which weights the checkpoint lacked; a loaded model cannot tell a pretrained pooler from a
    random one. Resolve short names (e.g. with ``models.load.resolve_model``) first. The new
    modules' random initialisation follows the global torch seed.
    """
    try:
        config = AutoConfig.from_pretrained(base_path)
    except (OSError, ValueError) as error:
        raise DistillError(f"cannot read a model config from {base_path}: {error}") from error
    if not isinstance(config, BertConfig):
        raise DistillError(f"{base_path} holds a {config.model_type!r} model; a student needs a BERT encoder")
    validate_layers(layers, config.num_hidden_layers)
    try:
        base, loading_info = BertModel.from_pretrained(base_path, config=config, output_loading_info=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise DistillError(f"cannot load the BERT weights in {base_path}: {error}") from error
    missing = set(loading_info["missing_keys"])
    missing_encoder = sorted(key for key in missing if not key.startswith("pooler."))
    if missing_encoder:
        raise DistillError(f"{base_path} has no pretrained weights for {missing_encoder[:3]} "
                           f"({len(missing_encoder)} tensors in all); it is not a complete BERT encoder")
    has_pretrained_pooler = not any(key.startswith("pooler.") for key in missing)

    student_config = _student_config(config, layers)
    student_config.num_labels = num_labels
    student = BertForSequenceClassification(student_config)
    _copy_encoder(base, student, layers, copy_pooler=has_pretrained_pooler)
    new_head_modules = ("classifier",) if has_pretrained_pooler else ("bert.pooler", "classifier")
    return StudentFromBase(student, new_head_modules)
