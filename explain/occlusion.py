"""Leave-one-word-out occlusion: a word's contribution is how much P(toxic) drops without it.

    contribution(word) = P(toxic | comment) − P(toxic | the comment without that word)

Positive: the word pushes the verdict toward toxic; negative: toward not toxic. This is
occlusion (Zeiler & Fergus 2014) applied to words, the "erasure" of Li, Monroe & Jurafsky 2016
("Understanding Neural Networks through Representation Erasure"). Every number is exact: it is
the model's own answer to a comment a reader can write down, and the n + 1 comments (the whole
one and each one without one of its n words) go through the model as one batch.

Removing a word deletes its tokens, so the words after it move up, exactly as if the comment had
been typed without it; each variant is then truncated to the run's ``max_length`` as the predict
path truncates. A word beyond the model's window therefore contributes exactly 0, and a removal
that lets one more word into the window is counted as what it is.

Why not integrated gradients (Sundararajan et al. 2017), which sums to P(x) − P(baseline) by
construction ("completeness")?

- cost: it integrates gradients along a path of m inputs (20 to 300 in the paper), each a forward
  and a backward pass through the whole model; occlusion is one forward pass of n + 1 short
  comments, under ``torch.inference_mode()``, in the serving precision;
- meaning: its baseline (an all-zero or all-[PAD] embedding) is an input the model never saw,
  whereas "the comment without this word" is an ordinary comment.

What occlusion cannot show is redundancy: in "you stupid idiot" either insult alone may be enough,
so removing one changes little and both look weak. The contributions do not add up to the
probability, and nothing here claims they do.
"""
from dataclasses import dataclass

from explain.words import WordTokens, encode_words
from models.inference import probabilities_of_token_ids


@dataclass
class Explanation:
    """P(toxic) of the whole comment and each word's contribution to it, in reading order."""
    words: WordTokens
    probability: float
    contributions: list[float]

    def as_json(self) -> list[dict]:
        return [{"word": word, "contribution": contribution}
                for word, contribution in zip(self.words.words, self.contributions)]


def word_contributions(model, tokenizer, text: str, max_length: int, *, precision: str = "fp32",
                       text_prefix: str = "") -> Explanation:
    """Each word's contribution to the model's P(toxic) for ``text`` (see the module docstring).

    ``text_prefix`` is the run's ``--text-prefix``: it goes in front of every variant and is never left out.
    """
    return occlusion(model, tokenizer, encode_words(tokenizer, text, text_prefix), max_length, precision=precision)


def occlusion(model, tokenizer, words: WordTokens, max_length: int, *, precision: str = "fp32") -> Explanation:
    """The n + 1 forward passes, deduplicated: a word that changes nothing gets exactly 0.

    ``precision`` (fp32 or bf16) is that of the predictions being explained, so that the
    probability explained is the probability shown.
    """
    variants = [tuple(without_word(words, drop, max_length)) for drop in (None, *range(len(words.spans)))]
    distinct = list(dict.fromkeys(variants))
    probabilities = probabilities_of_token_ids(model, [list(v) for v in distinct], tokenizer, precision=precision)
    probability_of = dict(zip(distinct, probabilities.tolist()))
    whole = probability_of[variants[0]]
    return Explanation(words, whole, [whole - probability_of[variant] for variant in variants[1:]])


def without_word(words: WordTokens, drop: int | None, max_length: int) -> list[int]:
    """The token ids of the comment without word ``drop`` (None: the whole comment), truncated to ``max_length``.

    Truncation keeps the special tokens that frame the comment and cuts the text between them,
    as a tokenizer called with ``truncation=True, max_length=max_length`` does.
    """
    kept = [(token, word) for token, word in zip(words.token_ids, words.word_of_token)
            if word is None or word != drop]
    head = next((i for i, (_, word) in enumerate(kept) if word is not None), len(kept))
    tail = next((i for i, (_, word) in enumerate(reversed(kept[head:])) if word is not None), 0)
    text = kept[head:len(kept) - tail]
    room = max(max_length - head - tail, 0)
    return [token for token, _ in kept[:head] + text[:room] + kept[len(kept) - tail:]]

