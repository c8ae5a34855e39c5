"""A sensitivity check: the question's comparisons without the test comments a model may have seen.

Normalised (``data.splits.normalise_text``: case, Unicode forms and punctuation folded), a few
comments of the Kaggle test split repeat a training or validation comment. A model may have learnt
those by heart, so the three primary comparisons are computed again without them. If they move the
answer, the answer rests on memorised comments.
"""
import numpy as np

from data.splits import normalise_text
from evaluate import COMPARED_PAIRS, PRIMARY_PAIRS, Run, RunPredictions, compare_methods, correct_as_family


def seen_in_training(splits) -> np.ndarray:
    """A mask over the test comments: True where the comment, normalised, is a training or validation comment."""
    seen = {normalise_text(text) for text in (*splits.train.texts, *splits.validation.texts)}
    return np.array([normalise_text(text) in seen for text in splits.test.texts])


def without_seen_comments(runs: list[Run], records: list[dict], predictions: dict[str, RunPredictions],
                          splits_by_test_set: dict) -> dict | None:
    """The primary comparisons on the unseen test comments only, Holm-corrected as their own family.

    None when no run of the question was scored. Runs scored on another test split are left out.
    """
    question = [run for run in runs if any(run.method in pair for pair in PRIMARY_PAIRS)]
    if not question:
        return None
    test_set = predictions[question[0].name].test_set
    seen = seen_in_training(splits_by_test_set[test_set])
    unseen = {name: RunPredictions(run.labels[~seen], run.probs[~seen], f"{test_set}-unseen")
              for name, run in predictions.items() if run.test_set == test_set}
    records = [record for record in records if record["name"] in unseen]
    questions = {(a, b): question for a, b, question in COMPARED_PAIRS}
    comparisons = {f"{a}_vs_{b}": {**compare_methods(records, unseen, a, b), "question": questions[a, b]}
                   for a, b in PRIMARY_PAIRS}
    correct_as_family(list(comparisons.values()), "primary, without seen comments")
    return {"dropped": int(seen.sum()), "kept": int((~seen).sum()), "comparisons": comparisons}
