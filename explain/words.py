"""The words of a comment as a reader sees them, and the tokens that spell each one.

A subword tokenizer cuts "id1ot" into "▁id", "1", "ot"; a contribution per piece would mean little
to a reader, who points at words. The unit of an explanation is therefore a *word as written*: a
maximal run of non-space characters of the original text, so "idiot!" or "i.d.i.o.t" is one word.
Fast tokenizers report the character span of every token (``offset_mapping``), and each token is
given to the word in which its first character lies. The tokenizer's own ``word_ids()`` would not
do: BERT's pre-tokenizer makes "idiot" and "!" two words, e5's makes them one.
"""
import re
from bisect import bisect_right
from dataclasses import dataclass

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
