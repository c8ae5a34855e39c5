"""Toxic probabilities of a trained classifier on a list of comments.

Evaluation reuses the training loop's own prediction path (``training.loop.predict_logits``):
batches of comments of similar length, each padded only to its longest member, under
``torch.inference_mode()`` with ``model.eval()`` (dropout off). The numbers in the report are
therefore computed exactly as the validation numbers were during training.
"""
import numpy as np
import torch

from report import ReportError
from training.batching import encode_texts
from training.loop import EncodedSplit, predict_logits

EVAL_BATCH_SIZE = 64


def predict_toxic_probs(model, tokenizer, texts: list[str], max_length: int,
                        batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """P(toxic) for each comment, in the order given: softmax over the two logits, class 1."""
    if tokenizer.pad_token_id is None:
        raise ReportError("the run's tokenizer has no pad token, so comments cannot be batched")
    token_ids = encode_texts(tokenizer, texts, max_length)
    unlabelled = EncodedSplit(token_ids=token_ids, labels=[0] * len(token_ids))  # labels are not used
    device = next(model.parameters()).device
    logits = predict_logits(model, unlabelled, tokenizer.pad_token_id, device, batch_size)
    return torch.softmax(logits, dim=-1)[:, 1].numpy().astype(np.float64)
