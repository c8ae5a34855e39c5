"""Task-specific knowledge distillation: a shallower student and the loss that teaches it.

``student.py`` builds the student by copying every other layer of the teacher, as DistilBERT
does (Sanh et al. 2019, arXiv:1910.01108); ``loss.py`` mixes the hard-label loss with the
teacher's softened predictions (Hinton et al. 2015, arXiv:1503.02531) and a cosine alignment
term; ``teacher_logits.py`` caches the teacher's predictions so it runs once, not every epoch.
"""


class DistillError(ValueError):
    """A bad distillation input: an invalid layer selection, or a teacher or tokenizer the student cannot use."""
