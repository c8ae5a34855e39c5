"""Experiments made of many train.py runs: the multi-seed study (make study) and the tuning search
(make tune), each a plan that runner.py executes resumably, every run through resume.py."""
