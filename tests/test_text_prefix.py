"""--text-prefix: every text a run reads carries it, in training and wherever the run is scored.

e5 models were trained with "query: " in front of every text; a run trained with a prefix must be
scored with the same one by evaluate.py, predict.py and the web app, so the prefix travels in
history.json like ``max_length``. The tests use the word-level tiny tokenizer, for which "query:"
becomes two unknown tokens: a prefix that went missing would change the token ids and the scores.
"""
import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

import evaluate
import train
from conftest import tiny_classifier
from data.load import load_splits
from distill.teacher_logits import cache_key
from models.load import ModelError, load_tokenizer, resolve_model
from serving.explain import encode_words, without_word, word_contributions
from serving.precision import load_predictor
from training.metrics import binary_metrics
from evaluate import dataset_args
from test_train_cli import args_for, world  # noqa: F401 - the tiny CSV, teacher and base of the CLI tests
from training.batching import encode_texts
from training.run_folder import trained_text_prefix
from training.loop import EncodedSplit
from webapp.app import Predictor

PREFIX = "query: "
COMMENTS = ["you are an idiot", "thanks for the thoughtful reply", "what a dumb thing to say"]


def test_every_text_is_encoded_with_the_prefix_and_truncation_never_cuts_it(tokenizer):
    assert encode_texts(tokenizer, COMMENTS, 32, PREFIX) == tokenizer([PREFIX + c for c in COMMENTS])["input_ids"]
    assert encode_texts(tokenizer, COMMENTS, 32) == tokenizer(COMMENTS)["input_ids"], "no prefix by default"
    short = encode_texts(tokenizer, ["you are an idiot"], 5, PREFIX)[0]
    assert tokenizer.convert_ids_to_tokens(short) == ["[CLS]", "[UNK]", "[UNK]", "you", "[SEP]"]


def test_the_teacher_logit_cache_key_changes_with_the_prefix(tmp_path, tokenizer):
    tiny_classifier(layers=2).save_pretrained(tmp_path)
    keys = {cache_key(tmp_path, EncodedSplit(encode_texts(tokenizer, COMMENTS, 32, prefix), [0, 0, 1]))
            for prefix in ("", PREFIX, "thanks ")}
    assert len(keys) == 3


def test_a_run_records_its_prefix_and_every_scoring_path_applies_it(world):
    train.main(args_for("teacher", "--text-prefix", PREFIX))
    run = world / "runs" / "teacher"
    history = json.loads((run / "history.json").read_text())
    assert history["args"]["text_prefix"] == PREFIX and trained_text_prefix(history) == PREFIX
    model, tokenizer = train.load_classifier(str(run)), train.load_tokenizer(str(run))
    with_prefix = Predictor("prefixed", model, tokenizer, max_length=16, text_prefix=PREFIX).probabilities(COMMENTS)
    assert not np.allclose(with_prefix, Predictor("bare", model, tokenizer, max_length=16).probabilities(COMMENTS)), \
        "the prefix matters"

    # evaluate.py scores with the recorded prefix ...
    scorer = evaluate.load_scorer(run, history)
    np.testing.assert_allclose(scorer.predict(COMMENTS), with_prefix, atol=1e-6)
    # ... and so do predict.py and the web app, which share Predictor.
    served = load_predictor(run, precision="fp32")
    assert served.text_prefix == PREFIX
    np.testing.assert_allclose([p["toxic_probability"] for p in served.predict(COMMENTS)], with_prefix, atol=1e-6)
    # The best epoch's validation ROC-AUC that training recorded is the one of prefixed validation comments.
    splits = load_splits(**dataset_args(history))
    validation = served.probabilities(splits.validation.texts)
    best = history["epochs"][history["best_epoch"] - 1]["validation"]
    assert binary_metrics(splits.validation.labels, validation)["roc_auc"] == pytest.approx(best["roc_auc"], abs=1e-6)


def test_a_run_recorded_without_a_prefix_is_served_without_one():
    assert trained_text_prefix({"args": {"max_length": 64}}) == "" and trained_text_prefix(None) == ""


def test_a_student_must_read_what_its_teacher_was_trained_on(world):
    (world / "teacher" / "history.json").write_text(json.dumps({"args": {"text_prefix": PREFIX}}))
    with pytest.raises(ModelError, match=r"the teacher teacher was trained with --text-prefix 'query: ' but this run "
                                         r"has ''") as error:
        train.main(args_for("odd"))
    assert "\n" not in str(error.value) and not (world / "runs").exists()
    train.main(args_for("odd", "--text-prefix", PREFIX))
    assert json.loads((world / "runs" / "odd" / "history.json").read_text())["args"]["text_prefix"] == PREFIX


def test_explanations_keep_the_prefix_in_every_variant_and_never_attribute_to_it(tokenizer):
    model = tiny_classifier(layers=2)
    text = "thank you for the reply you idiot"
    words = encode_words(tokenizer, text, PREFIX)
    assert words.words == text.split() and words.text == text
    tokens = tokenizer.convert_ids_to_tokens(words.token_ids)
    assert [t for t, w in zip(tokens, words.word_of_token) if w is None] == ["[CLS]", "[UNK]", "[UNK]", "[SEP]"]
    assert without_word(words, None, 6) == encode_texts(tokenizer, [text], 6, PREFIX)[0]

    predictor = Predictor("prefixed", model, tokenizer, max_length=64, text_prefix=PREFIX)
    explanation = word_contributions(predictor, text)
    reduced = [" ".join(w for j, w in enumerate(text.split()) if j != i) for i in range(len(text.split()))]
    whole, *without = predictor.probabilities([text, *reduced])
    assert explanation.probability == pytest.approx(whole, abs=1e-5)
    assert explanation.contributions == pytest.approx([whole - p for p in without], abs=1e-5)


def test_a_token_that_starts_in_the_prefix_and_ends_in_the_text_belongs_to_the_first_word():
    """A SentencePiece tokenizer may glue the space before a word to it: "▁you" then starts in the prefix's space."""
    pieces = ["<pad>", "<unk>", "<s>", "</s>", "▁query:", "▁you", "▁idiot", "▁"]
    backend = Tokenizer(models.Unigram([(piece, -1.0) for piece in pieces], unk_id=1))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    sentencepiece = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                            bos_token="<s>", eos_token="</s>")
    encoding = sentencepiece(PREFIX + "you idiot", return_offsets_mapping=True)
    assert encoding["offset_mapping"][2][0] < len(PREFIX), "the case under test: '▁you' starts in the prefix"
    words = encode_words(sentencepiece, "you idiot", PREFIX)
    tokens = sentencepiece.convert_ids_to_tokens(words.token_ids)
    assert list(zip(tokens, words.word_of_token))[:3] == [("<s>", None), ("▁query:", None), ("▁you", 0)]


@pytest.mark.assets
def test_the_e5_tokenizer_reads_query_as_three_prefix_tokens_before_the_words():
    tokenizer = load_tokenizer(resolve_model("e5-small"))
    words = encode_words(tokenizer, "you  stupid idiot!", PREFIX)
    tokens = tokenizer.convert_ids_to_tokens(words.token_ids)
    assert [t for t, w in zip(tokens, words.word_of_token) if w is None] == ["<s>", "▁que", "ry", ":", "</s>"]
    assert [w for w in words.word_of_token if w is not None] == [0, 1, 2, 2]
    assert words.token_ids == encode_texts(tokenizer, ["you  stupid idiot!"], 128, PREFIX)[0]
