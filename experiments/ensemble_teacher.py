"""Soft labels from several teachers, their logits averaged, while the student's layers still come from --teacher.

    python -m experiments.train_extras --method odd --soft-labels-from runs/teacher,runs/study/teacher-seed1

Teachers of different seeds make different mistakes, so their average ranks comments better than one (Hinton et
al. 2015, section 1: "the knowledge in an ensemble of models"). Each teacher reads the comments with its own
tokenizer and its logits are cached like --teacher's (``train.teacher_soft_labels``), so a teacher of another
architecture than the student's can be one of them.
"""
import torch

import train
from models.load import load_classifier


def add_ensemble_flags(parser) -> None:
    """``--soft-labels-from``, added to train.py's flags (experiments/train_extras.py)."""
    parser.add_argument("--soft-labels-from", type=train.module_names,
                        help="teacher run folders whose averaged logits are the soft labels (default: --teacher; "
                             "experiments/ensemble_teacher.py)")


class EnsembleSoftLabels:
    """``train.main``'s ``soft_labels`` hook: the averaged logits of the teachers in ``folders``, each loaded once."""

    def __init__(self, folders: list[str]):
        self.folders, self.teachers = folders, {}

    def check(self, text_prefix: str) -> None:
        """Before any work, as train.py checks --teacher: every folder is a teacher trained on inputs like ours."""
        for folder in self.folders:
            train.check_teacher(folder, text_prefix)

    def __call__(self, texts: list[str], args, env) -> torch.Tensor:
        logits = []
        for folder in self.folders:
            if folder not in self.teachers:
                self.teachers[folder] = load_classifier(folder).to(env.device)
            logits.append(train.teacher_soft_labels(folder, self.teachers[folder], texts, args, env))
        return torch.stack(logits).mean(dim=0)
