"""LoRA written out by hand (Hu et al. 2021, arXiv:2106.09685): h = W0 x + B A x · α/r (or α/√r, rsLoRA).

lora.py holds the adapted layer, how it goes into a whole model and is merged away, and the trained adapter
saved as a small safetensors file (serving/adapter.py reads it back).
"""
