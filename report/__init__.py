"""The evaluation report: every trained run scored on its held-out test split, side by side.

``evaluate.py`` drives it top to bottom (its inference is ``models.inference``, the one path the
web app and ``predict.py`` share); each module here holds one concept:

- ``runs``      finds run folders and reads their history.json
- ``quality``   metrics on validation and test, with the threshold chosen on validation only
- ``costs``     parameters, size on disk, inference speed, training time
- ``flags``     degenerate runs (constant predictor, near-chance ranking, duplicated predictions)
- ``stats``     mean ± std, the paired bootstrap of a ROC-AUC difference and the interval of one ROC-AUC
- ``study``     the multi-seed study: per-method summaries and paired method comparisons
- ``behaviour`` the behavioural suite (data/behaviour.py) on every run: pass rates, failures, explained
- ``ablations`` the ablations of experiments/ablations.py: a table per question, the teachers' ensemble,
                the best student against minilm, the points of the trade-off figure
- ``tables``, ``plots``, ``findings``, ``document``  the Markdown tables, figures and sentences
- ``readme``    replaces the marked results section of README.md

Files are written with ``training.files``, atomically, so no half-written report is left on disk.
"""


class ReportError(ValueError):
    """The runs cannot be evaluated or reported as asked (missing folder, malformed history, ...)."""
