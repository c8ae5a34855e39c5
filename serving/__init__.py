"""Extras around the core web app (webapp/app.py): what makes it fast, deployable and explained.

- ``server``      the full server behind ``python -m webapp`` (flags) and ``serving.wsgi`` (DVL_* variables)
- ``runs``        which runs it loads: the study's answer from results.json, and the compare view's runs
- ``precision``   fp32, bf16 autocast, or ONNX Runtime in fp32 or int8, behind the same ``Predictor``
- ``export_onnx`` the run's ONNX exports (``python -m serving.export_onnx runs/odd``, or on first serve)
- ``batching``    concurrent requests sharing one forward pass
- ``explain``     each word's contribution to P(toxic), for the page and the API
- ``adapter``     a LoRA run's adapter file read back onto a fresh base model

They import the core; the core never imports them (serving/README.md).
"""
