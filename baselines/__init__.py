"""Baselines: what a practitioner would use instead of a distilled or LoRA student (the TF-IDF model; the
fine-tuned minilm baseline is an ordinary method of train.py on an embedded model)."""
