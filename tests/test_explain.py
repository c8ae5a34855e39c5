"""Word contributions by leave-one-word-out occlusion (serving/explain.py), on tiny models, no download."""
import types

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from conftest import tiny_classifier
from serving.explain import encode_words, without_word, word_contributions
from webapp.app import Predictor

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "thank", "you", "for", "the", "reply", "id", "##iot", "!", ","]


def wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """BERT-style: WordPiece subwords ("idiot" = "id" + "##iot"), punctuation split off, [CLS] ... [SEP]."""
    tokenizer = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(PIECES)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")


class KeysOnOneToken(torch.nn.Module):
    """A classifier whose verdict depends on one token only: toxic (P ≈ 0.95) iff ``token_id`` is present."""

    def __init__(self, token_id: int):
        super().__init__()
        self.token_id = token_id
        self.config = types.SimpleNamespace(num_labels=2)
        self.scale = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, input_ids, attention_mask):
        present = ((input_ids == self.token_id) & attention_mask.bool()).any(dim=1).float()
        toxic_logit = self.scale * (2 * present - 1)
        return types.SimpleNamespace(logits=torch.stack([torch.zeros_like(toxic_logit), toxic_logit], dim=1))


def test_subword_pieces_are_merged_into_the_words_a_reader_sees():
    words = encode_words(wordpiece_tokenizer(), "Thank you,  you idiot!")
    assert words.words == ["Thank", "you,", "you", "idiot!"]
    tokens = wordpiece_tokenizer().convert_ids_to_tokens(words.token_ids)
    assert [t for t, w in zip(tokens, words.word_of_token) if w == 3] == ["id", "##iot", "!"]
    assert [t for t, w in zip(tokens, words.word_of_token) if w is None] == ["[CLS]", "[SEP]"]


def test_a_model_that_reads_one_token_gets_all_the_attribution_on_that_word():
    tokenizer = wordpiece_tokenizer()
    model = KeysOnOneToken(PIECES.index("##iot"))
    predictor = Predictor("keys", model, tokenizer, max_length=32)
    explanation = word_contributions(predictor, "thank you for the reply, you idiot!")
    contributions = dict(zip(explanation.words.words, explanation.contributions))
    with_word, without = torch.sigmoid(torch.tensor([3.0, -3.0])).tolist()
    assert explanation.probability == pytest.approx(with_word)
    assert contributions["idiot!"] == pytest.approx(with_word - without)
    others = [abs(c) for word, c in contributions.items() if word != "idiot!"]
    assert contributions["idiot!"] > 0.98 * (contributions["idiot!"] + sum(others))
    assert max(others) == 0.0


def test_each_contribution_is_the_probability_drop_without_that_word(tokenizer):
    """Occlusion claims P(comment) − P(comment without the word); the predict path, asked separately, agrees."""
    model = tiny_classifier(layers=2)
    text = "thank you for the thoughtful reply you idiot"
    explanation = word_contributions(Predictor("tiny", model, tokenizer, max_length=64), text)
    words = text.split()
    without = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    whole, *reduced = Predictor("tiny", model, tokenizer, max_length=64).probabilities([text, *without])
    assert explanation.probability == pytest.approx(whole, abs=1e-5)
    assert explanation.contributions == pytest.approx([whole - p for p in reduced], abs=1e-5)
    assert min(map(abs, explanation.contributions)) > 0, "a random model reacts to every word"
    assert [item["word"] for item in explanation.as_json()] == words


def test_truncation_matches_the_predict_path_and_words_past_the_window_count_zero(tokenizer):
    model = tiny_classifier(layers=2)
    text = "thank you for the thoughtful reply you idiot"
    max_length = 6  # [CLS] + four words + [SEP]
    words = encode_words(tokenizer, text)
    assert without_word(words, None, max_length) == tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    explanation = word_contributions(Predictor("tiny", model, tokenizer, max_length=max_length), text)
    assert explanation.contributions[4:] == [0.0] * 4
    whole, without_first = Predictor("tiny", model, tokenizer, max_length=max_length).probabilities(
        [text, text.split(" ", 1)[1]])
    assert explanation.contributions[0] == pytest.approx(whole - without_first, abs=1e-5), \
        "removing a word lets the next one into the window"


def test_a_one_word_comment_is_compared_with_the_empty_comment(tokenizer):
    model = tiny_classifier(layers=2)
    explanation = word_contributions(Predictor("tiny", model, tokenizer, max_length=16), "idiot")
    empty = Predictor("tiny", model, tokenizer, max_length=16).probabilities([""])[0]
    assert explanation.contributions == pytest.approx([explanation.probability - empty], abs=1e-5)


def test_a_slow_tokenizer_is_refused_with_a_reason():
    with pytest.raises(TypeError, match="fast"):
        encode_words(types.SimpleNamespace(is_fast=False), "you idiot")
