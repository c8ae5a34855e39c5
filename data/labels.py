"""Map a dataset's labels onto the one task every model here learns: toxic (1) or not toxic (0).

Datasets label toxicity as 0/1, booleans, annotator scores or named classes. One rule is chosen from the values of
all splits together, so every split is mapped alike; the first that applies wins:

1. ``toxic_labels`` (``--toxic-labels``): exactly those values or class names are toxic, whatever the rules below say.
2. Named classes (a ``ClassLabel``, or strings) like "offensive language": toxic when the name mentions one of
   ``TOXIC_WORDS`` and starts with no negation ("non-toxic"); the names say nothing unless some are toxic, some not.
3. Booleans, or integers that are all 0 or 1: as they are.
4. Numbers between 0 and 1 (e.g. the share of annotators who found a comment toxic): toxic from 0.5, the majority.
5. Anything else: a ``DataError`` that names the values seen and asks for ``toxic_labels``.
"""
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from data import DataError

# Word stems, matched anywhere in a lower-cased class name ("offens" finds offense and offensive).
TOXIC_WORDS = ("hate", "offens", "toxic", "insult", "abus", "obscen", "threat", "harass", "profan", "slur", "bully")
SCORE_THRESHOLD = 0.5
# The class names every saved run's config.json carries: a transformers pipeline answers "toxic", not LABEL_1.
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
    return any(stem in name for stem in TOXIC_WORDS) and not re.match(r"non|not\b|no\b", name)


def binary_label_mapping(values: Iterable, class_names: Sequence[str] | None = None,
                         toxic_labels: Sequence[str | int] | str | None = None) -> LabelMapping:
    """Map every value to 0 or 1 by the first rule above that applies (``toxic_labels`` may be comma-separated)."""
    if isinstance(toxic_labels, str):
        toxic_labels = [label.strip() for label in toxic_labels.split(",")]
    try:
        seen = set(values)
    except TypeError:  # lists (multi-label columns) and other unhashable values
        raise DataError("each label must be one value (a number, a boolean or a class name); "
                        "this column holds lists or records. Pick another --label-column.") from None
    name_of = {v: class_names[v] if class_names is not None and isinstance(v, int) and 0 <= v < len(class_names)
               else str(v) for v in seen}  # a ClassLabel value is the index of its class name

    def labels_seen(limit: int = 10) -> str:
        shown = [repr(v) if name_of[v] == str(v) else f"{v!r} ({name_of[v]})" for v in sorted(seen, key=repr)[:limit]]
        return ", ".join(shown) + (f" and {len(seen) - limit} more" if len(seen) > limit else "")

    if toxic_labels is not None:
        wanted = {str(label) for label in toxic_labels}
        binary = {v: int(str(v) in wanted or name_of[v] in wanted) for v in seen}
        if not any(binary.values()):
            raise DataError(f"none of the toxic labels {sorted(wanted)} occur in the data; "
                            f"the labels seen are {labels_seen()}")
        return LabelMapping(binary, f"toxic = {sorted(wanted)} (given)")

    if class_names is not None or all(isinstance(v, str) for v in seen):
        names = list(class_names) if class_names is not None else sorted(seen)
        toxic = [name for name in names if is_toxic_name(name)]
        if 0 < len(toxic) < len(names) and all(name_of[v] in names for v in seen):
            return LabelMapping({v: int(name_of[v] in toxic) for v in seen},
                                f"class names {toxic} -> toxic, the others not")
    elif seen <= {0, 1}:  # True == 1 and False == 0, so booleans pass too
        return LabelMapping({v: int(v) for v in seen}, "0/1 labels as they are")
    elif all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in seen):
        return LabelMapping({v: int(v >= SCORE_THRESHOLD) for v in seen}, f"scores >= {SCORE_THRESHOLD} -> toxic")

    raise DataError(f"cannot tell which labels mean toxic: the labels seen are {labels_seen()}. "
                    f"Pass the toxic ones with --toxic-labels (toxic_labels=[...]), as values or class names.")
