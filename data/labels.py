"""Map a dataset's labels onto the one task every model here learns: toxic (1) or not toxic (0).

Datasets label toxicity in many ways: 0/1 integers, booleans, annotator scores between 0 and 1,
or named classes such as ``tdavidson/hate_speech_offensive``'s 0 "hate speech",
1 "offensive language", 2 "neither". The rule, first match wins:

1. ``toxic_labels`` given (``--toxic-labels``): exactly those values or class names are toxic,
   everything else is not. This overrides every rule below.
2. Named classes (a ``ClassLabel`` feature, or string labels): a class is toxic when its name
   mentions one of ``TOXIC_WORDS`` (hate, offensive, toxic, insult, abusive, obscene, ...) and
   does not start with a negation ("non-toxic", "not offensive"). At least one class must come out
   toxic and one not, otherwise the names tell us nothing and we ask for ``toxic_labels``.
3. Booleans, or integers that are all 0 or 1: taken as they are.
4. Numbers between 0 and 1 (e.g. the share of annotators who found a comment toxic):
   toxic when >= 0.5, the majority vote.
5. Anything else: a ``DataError`` naming the values seen and asking for ``toxic_labels``.

The rule is chosen once from the values of all splits together, so every split is mapped alike.
"""
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from data import DataError

# Word stems, matched anywhere in a lower-cased class name ("offens" finds offense and offensive).
TOXIC_WORDS = ("hate", "offens", "toxic", "insult", "abus", "obscen", "threat", "harass", "profan",
               "slur", "bully")
_NEGATED = re.compile(r"^(?:non|not\b|no\b)")
SCORE_THRESHOLD = 0.5
# The class names every saved run carries in config.json, so that a plain transformers pipeline
# answers "toxic" / "not_toxic" instead of LABEL_1 / LABEL_0.
ID2LABEL = {0: "not_toxic", 1: "toxic"}
LABEL2ID = {name: index for index, name in ID2LABEL.items()}


@dataclass(frozen=True)
class LabelMapping:
    """Which binary label each distinct value of the label column gets, and the rule that said so."""
    binary: dict
    rule: str

    def apply(self, values: Iterable) -> list[int]:
        return [self.binary[value] for value in values]


def is_toxic_name(name: str) -> bool:
    """Whether a class name such as "offensive_language" or "non-toxic" names a toxic class."""
    name = re.sub(r"[_\-]+", " ", name.strip().lower())
    return any(stem in name for stem in TOXIC_WORDS) and not _NEGATED.match(name)


def binary_label_mapping(values: Iterable, class_names: Sequence[str] | None = None,
                         toxic_labels: Sequence[str | int] | str | None = None) -> LabelMapping:
    """Choose the rule (see the module docstring) that maps every value in ``values`` to 0 or 1.

    ``class_names`` are the names of a ``ClassLabel`` feature, whose values are their indices.
    ``toxic_labels`` is a list, or a comma-separated string as typed on the command line.
    """
    if isinstance(toxic_labels, str):
        toxic_labels = [label.strip() for label in toxic_labels.split(",")]
    try:
        seen = set(values)
    except TypeError:  # lists (multi-label columns) and other unhashable values
        raise DataError("each label must be one value (a number, a boolean or a class name); "
                        "this column holds lists or records. Pick another --label-column.") from None

    def name_of(value) -> str:
        if class_names is not None and isinstance(value, int) and 0 <= value < len(class_names):
            return class_names[value]
        return str(value)

    if toxic_labels is not None:
        wanted = {str(label) for label in toxic_labels}
        binary = {v: int(str(v) in wanted or name_of(v) in wanted) for v in seen}
        if not any(binary.values()):
            raise DataError(f"none of the toxic labels {sorted(wanted)} occur in the data; "
                            f"the labels seen are {_describe(seen, name_of)}")
        return LabelMapping(binary, f"toxic = {sorted(wanted)} (given)")

    if class_names is not None or all(isinstance(v, str) for v in seen):
        names = list(class_names) if class_names is not None else sorted(seen)
        toxic = [name for name in names if is_toxic_name(name)]
        if 0 < len(toxic) < len(names) and all(name_of(v) in names for v in seen):
            return LabelMapping({v: int(name_of(v) in toxic) for v in seen},
                                f"class names {toxic} -> toxic, the others not")
    elif seen <= {0, 1}:  # True == 1 and False == 0, so booleans pass too
        return LabelMapping({v: int(v) for v in seen}, "0/1 labels as they are")
    elif all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in seen):
        return LabelMapping({v: int(v >= SCORE_THRESHOLD) for v in seen},
                            f"scores >= {SCORE_THRESHOLD} -> toxic")

    raise DataError(f"cannot tell which labels mean toxic: the labels seen are {_describe(seen, name_of)}. "
                    f"Pass the toxic ones with --toxic-labels (toxic_labels=[...]), as values or class names.")


def _describe(seen: set, name_of, limit: int = 10) -> str:
    shown = sorted(seen, key=repr)[:limit]
    text = ", ".join(repr(v) if name_of(v) == str(v) else f"{v!r} ({name_of(v)})" for v in shown)
    return text + (f" and {len(seen) - limit} more" if len(seen) > limit else "")
