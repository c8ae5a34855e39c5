"""Build a shallow BERT student from chosen layers of a deeper BERT.

DistilBERT (Sanh et al. 2019, arXiv:1910.01108, section 3) initialises its 6-layer student "from the
teacher by taking one layer out of two": the student starts close to the teacher's solution, and training
only has to repair what removing the other layers broke. Odd and even are the two ways to take one of two.

Layers are numbered from 1: layer 1 reads the embeddings, the last one feeds the pooler; layer ``n`` is at
index ``n - 1`` of ``model.bert.encoder.layer``. ``build_student`` copies everything, the head included, from
a fine-tuned teacher (distillation); ``build_student_from_base`` copies from a pretrained encoder never
fine-tuned, and names the modules it had to create (LoRA).
"""
import copy
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from transformers import AutoConfig, BertConfig, BertForSequenceClassification, BertModel

from distill import DistillError

# The named layer sets, each half of a teacher of any depth d (here d = 12).
LAYER_SETS = {
    "odd": lambda d: list(range(1, d + 1, 2)),  # 1,3,5,7,9,11: one layer out of two, from the bottom
    "even": lambda d: list(range(2, d + 1, 2)),  # 2,4,6,8,10,12: one layer out of two, up to the top
}
LAYER_SPEC_HELP = f"write a named set ({', '.join(LAYER_SETS)}) or increasing layer numbers from 1, like '1,4,7'"


def parse_layers(spec: str, teacher_layers: int) -> list[int]:
    """The 1-based teacher layers that ``spec`` keeps: a name of ``LAYER_SETS`` (for a teacher of
    ``teacher_layers`` layers) or a list such as "1,4,7", checked by ``validate_layers``."""
    name = spec.strip().lower()
    if name in LAYER_SETS:
        layers = LAYER_SETS[name](teacher_layers)
    elif not name:
        raise DistillError(f"the layer spec is empty; {LAYER_SPEC_HELP}")
    else:
        pieces = [piece.strip() for piece in name.split(",")]
        for piece in pieces:
            if not re.fullmatch(r"-?[0-9]+", piece):
                raise DistillError(f"{piece!r} in the layer spec {spec!r} is not a layer number; {LAYER_SPEC_HELP}")
        layers = [int(piece) for piece in pieces]
    validate_layers(layers, teacher_layers)
    return layers


def validate_layers(layers: Sequence[int], teacher_layers: int) -> None:
    """Reject a layer list that would not make a sensible student: integers from 1 to ``teacher_layers``,
    at least one, increasing, no repeats. Order matters because of the residual stream: teacher layer 7 was
    trained on what layers 1-6 made of the input; running it before layer 4, or a layer twice on its own
    output, would feed layers what they never saw, and the student would start far from the teacher.
    """
    layers = list(layers)
    if not layers:
        raise DistillError(f"no layers selected: a student needs at least one encoder layer; {LAYER_SPEC_HELP}")
    for layer in layers:
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


def _student_config(source_config: BertConfig, layers: Sequence[int]) -> BertConfig:
    config = copy.deepcopy(source_config)  # a copy: the source keeps its own
    config.num_hidden_layers = len(layers)
    return config


def _copy_encoder(source: BertModel, student: BertForSequenceClassification, layers: Sequence[int], *,
                  copy_pooler: bool) -> None:
    """Copy the embeddings and source layer ``layers[k]`` (1-based) into student slot ``k``, by value."""
    student.bert.embeddings.load_state_dict(source.embeddings.state_dict())
    for slot, layer in enumerate(layers):
        student.bert.encoder.layer[slot].load_state_dict(source.encoder.layer[layer - 1].state_dict())
    if copy_pooler:
        student.bert.pooler.load_state_dict(source.pooler.state_dict())


def build_student(teacher: BertForSequenceClassification, layers: Sequence[int]) -> BertForSequenceClassification:
    """A classifier with copies of the ``teacher``'s embeddings, layers ``layers``, pooler and head, so it predicts
    roughly like the teacher before any training; on the teacher's device and dtype, sharing no tensor with it."""
    if not isinstance(teacher, BertForSequenceClassification):
        raise DistillError(f"the teacher must be a BertForSequenceClassification, got {type(teacher).__name__}")
    validate_layers(layers, teacher.config.num_hidden_layers)
    student = BertForSequenceClassification(_student_config(teacher.config, layers))
    student.to(device=teacher.device, dtype=teacher.dtype)
    _copy_encoder(teacher.bert, student, layers, copy_pooler=True)
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student


class StudentFromBase(NamedTuple):
    """A student built from a pretrained base, and its random new modules, which must train (never freeze)."""
    model: BertForSequenceClassification
    new_head_modules: tuple[str, ...]


def build_student_from_base(base_path: str | os.PathLike, layers: Sequence[int],
                            num_labels: int = 2) -> StudentFromBase:
    """A classifier whose embeddings and layers ``layers`` come from a pretrained (not fine-tuned) encoder.

    The classifier is new, and so is the pooler when the checkpoint has none (e5-small): a random pooler that
    the caller then froze would cripple the model, so the new modules are named. It takes a path, not a model:
    only loading reveals which weights the checkpoint lacked. New modules follow the torch seed.
    """
    try:
        config = AutoConfig.from_pretrained(base_path, trust_remote_code=False)
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
