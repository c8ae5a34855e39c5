"""Why a model decided: each word's contribution to its toxic probability, by leave-one-word-out occlusion.

    contribution(word) = P(toxic | comment) − P(toxic | the comment without that word)

Positive: the word pushes the verdict toward toxic; negative: toward not toxic. This is occlusion
(Zeiler & Fergus 2014) applied to words, the "erasure" of Li, Monroe & Jurafsky 2016
("Understanding Neural Networks through Representation Erasure"). Every number is exact: it is the
model's own answer to a comment a reader can write down, and the n + 1 comments (the whole one and
each one without one of its n words) go through the model as one batch.

**Words.** A subword tokenizer cuts "id1ot" into "▁id", "1", "ot"; a contribution per piece would
mean little to a reader, who points at words. The unit is therefore a *word as written*: a maximal
run of non-space characters, so "idiot!" or "i.d.i.o.t" is one word. Fast tokenizers report the
character span of every token (``offset_mapping``), and each token is given to the word in which its
first character lies. The tokenizer's own ``word_ids()`` would not do: BERT's pre-tokenizer makes
"idiot" and "!" two words, e5's makes them one.

**Removing a word** deletes its tokens, so the words after it move up, exactly as if the comment had
been typed without it; each variant is then truncated to the run's ``max_length`` as the predict path
truncates. A word beyond the model's window therefore contributes exactly 0, and a removal that lets
one more word into the window is counted as what it is.

**Why not integrated gradients** (Sundararajan et al. 2017), which sums to P(x) − P(baseline) by
construction? Cost: it integrates gradients along a path of m inputs (20 to 300 in the paper), each a
forward and a backward pass; occlusion is one forward pass of n + 1 short comments, in the serving
precision. Meaning: its baseline (an all-zero or all-[PAD] embedding) is an input the model never
saw, whereas "the comment without this word" is an ordinary comment. What occlusion cannot show is
redundancy: in "you stupid idiot" either insult alone may be enough, so removing one changes little
and both look weak. The contributions do not add up to the probability, and nothing here claims so.

**In the web app** (``explain``, the hook ``webapp.app.make_app`` takes): the page explains the
served model's verdict and the API the texts it is asked to (``"explain": true``), at most
``MAX_EXPLAIN_WORDS`` words a request, since each word costs a comment in the batch.
"""
import re
from bisect import bisect_right
from dataclasses import dataclass

from webapp.app import Predictor, require

MAX_EXPLAIN_WORDS = 100
# A word's shade steps up at these changes of P(toxic) when it is left out. The steps are absolute,
# not relative to the comment, so one shade means the same in every model's explanation.
CONTRIBUTION_STEPS = (0.02, 0.1, 0.25, 0.5)
WORD = re.compile(r"\S+")


@dataclass
class WordTokens:
    """A comment's words (character spans) and its full encoding, special tokens included, untruncated.

    ``word_of_token[i]`` is the index of the word that token ``i`` spells, or None for a special
    token (``[CLS]``, ``</s>``...) or a token of the run's text prefix, which belong to no word and
    are never left out.
    """
    text: str
    spans: list[tuple[int, int]]
    token_ids: list[int]
    word_of_token: list[int | None]

    @property
    def words(self) -> list[str]:
        return [self.text[start:end] for start, end in self.spans]


@dataclass
class Explanation:
    """P(toxic) of the whole comment and each word's contribution to it, in reading order."""
    words: WordTokens
    probability: float
    contributions: list[float]

    def as_json(self) -> list[dict]:
        return [{"word": word, "contribution": contribution}
                for word, contribution in zip(self.words.words, self.contributions)]

    def pieces(self) -> list[tuple[str, str | None, float | None]]:
        """The comment as (text, CSS class, contribution) pieces for the page: each word with its shade, the
        spaces between as typed."""
        text, pieces, end = self.words.text, [], 0
        for (start, stop), contribution in zip(self.words.spans, self.contributions):
            pieces += [(text[end:start], None, None), (text[start:stop], shade(contribution), contribution)]
            end = stop
        return pieces + [(text[end:], None, None)]


def shade(contribution: float) -> str:
    """``push-toxic-1`` ... ``push-toxic-4``, ``push-clean-1`` ... ``push-clean-4``, or ``push-none`` below the first step."""
    level = sum(abs(contribution) >= step for step in CONTRIBUTION_STEPS)
    return f"push-{'toxic' if contribution > 0 else 'clean'}-{level}" if level else "push-none"


def explain(predictor: Predictor, texts: list[str]) -> list[Explanation]:
    """The web app's hook: every text's explanation, or a 400 when they hold more than MAX_EXPLAIN_WORDS words."""
    words = sum(len(word_spans(text)) for text in texts)
    require(words <= MAX_EXPLAIN_WORDS, 400, f"Explanations cover up to {MAX_EXPLAIN_WORDS} words a request, "
                                             f"as each word costs a forward pass; this one holds {words:,}.")
    return [word_contributions(predictor, text) for text in texts]


def word_contributions(predictor: Predictor, text: str) -> Explanation:
    """Each word's contribution to the predictor's P(toxic) for ``text``, at its precision; thread-safe.

    The run's text prefix goes in front of every variant and is never left out. Identical variants
    are scored once, so a word that changes nothing gets exactly 0.
    """
    with predictor.tokenizer_lock:
        words = encode_words(predictor.tokenizer, text, predictor.text_prefix)
    variants = [tuple(without_word(words, drop, predictor.max_length)) for drop in (None, *range(len(words.spans)))]
    distinct = list(dict.fromkeys(variants))
    probability_of = dict(zip(distinct, predictor.probabilities_of_ids([list(v) for v in distinct]).tolist()))
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


def word_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) character span of each word of ``text``."""
    return [match.span() for match in WORD.finditer(text)]


def encode_words(tokenizer, text: str, prefix: str = "") -> WordTokens:
    """Tokenise ``prefix`` + ``text`` whole (truncation comes later, per variant) and map every token to its word.

    The prefix (a run's ``--text-prefix``) is read as the model reads it, but its tokens, those
    that end inside it, belong to no word; a token that starts in the prefix and ends in the text
    (a space-marked piece such as "▁you") belongs to the text's first word.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("explanations need a fast (Rust) tokenizer: they map tokens to words by character offsets")
    encoding = tokenizer(prefix + text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
    spans = word_spans(text)
    starts = [start for start, _ in spans]
    shift = len(prefix)
    in_prefix = [shift > 0 and end <= shift for _, end in encoding["offset_mapping"]]
    word_of_token = [None if special or prefixed or not spans else max(bisect_right(starts, start - shift) - 1, 0)
                     for (start, _), special, prefixed in zip(encoding["offset_mapping"],
                                                              encoding["special_tokens_mask"], in_prefix)]
    return WordTokens(text, spans, list(encoding["input_ids"]), word_of_token)
