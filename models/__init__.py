"""Naming and loading models: "e5-small", a local save_pretrained folder, or a Hugging Face hub id."""
