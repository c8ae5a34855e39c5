"""The full report around the answer: ``python -m report`` (report/__main__.py).

``evaluate.py`` scores the runs and compares the methods; the report starts from its functions and
adds what a reader of the study wants beside the answer. Each module here holds one concept:

- ``inference`` a run as a scorer with its model and tokenizer (speed, behaviour, explanations)
- ``costs``     parameters, size on disk, inference speed
- ``flags``     degenerate runs (constant predictor, near-chance ranking, duplicated predictions)
- ``stats``     the interval of one method's ROC-AUC, for the figures
- ``runs``      the served run, the experiments' sessions, the training losses
- ``behaviour`` the behavioural suite (report/behaviour_cases.py) on every run: pass rates, failures, explained
- ``ablations`` the ablations of experiments/ablations.py: a table per question, the teachers' ensemble,
                the best student against minilm, the points of the trade-off figure
- ``model_card`` the README.md of every run folder, in the Hub's format
- ``tables``, ``plots``, ``findings``, ``document``  the Markdown tables, figures and sentences
- ``readme``    the README's answer, and the marked sections every generated text is written into
- ``reading_path``  the core files in reading order (``CORE_FILES``), with their line counts
- ``render``    writes the generated sections of README.md and docs/ (``python -m report.render``)

Files are written with ``training.files``, atomically, so no half-written report is left on disk.
"""
