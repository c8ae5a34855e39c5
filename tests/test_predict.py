"""predict.py, the batch scoring command: each input format, stdin, bad input, and agreement with the
web app and evaluate.py on the same comments."""
import io
import json
import sys

import pandas as pd
import pytest
import torch
from transformers import BertForSequenceClassification

import evaluate
import predict
from conftest import tiny_bert_config, tiny_history, tiny_tokenizer
from serving.batching import BatchSettings
from serving.precision import load_predictor
from serving.server import serving_app
from test_webapp import NOT_TOXIC, TOXIC, post_json, serve
from training.run_folder import save_run

COMMENTS = ["you are an idiot", "thanks for the reply great point", "what a dumb thing to say you moron",
            "i agree with your comment", "shut up loser"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "odd"
    torch.manual_seed(3)
    model = BertForSequenceClassification(tiny_bert_config(layers=2, initializer_range=0.5))
    save_run(folder, model, tiny_tokenizer(), tiny_history("odd", threshold=0.5, max_length=32, out=str(folder)))
    return folder


@pytest.fixture(scope="module")
def expected(run_folder):
    return load_predictor(run_folder, precision="fp32").predict(COMMENTS)


def score(run_folder, *args: str) -> int:
    return predict.main(["--model", str(run_folder), "--precision", "fp32", *args])


def check_scored(rows: pd.DataFrame, expected: list[dict]) -> None:
    assert list(rows.columns[-3:]) == ["toxic_probability", "label", "error"]
    assert rows["toxic_probability"].tolist() == pytest.approx([v["toxic_probability"] for v in expected], abs=1e-6)
    assert rows["label"].tolist() == [v["label"] for v in expected]


def test_csv_in_csv_out_keeps_every_input_column_as_it_was(run_folder, expected, tmp_path):
    source = tmp_path / "comments.csv"
    pd.DataFrame({"id": ["007", "2", "3", "4", "5"], "comment": COMMENTS, "note": ["NA", "", "x", "y", "z"]}) \
        .to_csv(source, index=False)
    assert score(run_folder, str(source), "--out", str(tmp_path / "scored.csv")) == 0
    scored = pd.read_csv(tmp_path / "scored.csv", dtype=str, keep_default_na=False)
    assert scored["id"].tolist() == ["007", "2", "3", "4", "5"] and scored["note"].tolist()[:2] == ["NA", ""]
    check_scored(scored.astype({"toxic_probability": float}), expected)


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_json_lines_and_parquet_in_and_out(run_folder, expected, tmp_path, suffix):
    source = tmp_path / f"comments.{suffix}"
    rows = pd.DataFrame({"body": COMMENTS, "score": [1, 2, 3, 4, 5]})
    rows.to_json(source, orient="records", lines=True) if suffix == "jsonl" else rows.to_parquet(source)
    out = tmp_path / f"scored.{suffix}"
    assert score(run_folder, str(source), "--text-column", "body", "--out", str(out)) == 0
    scored = pd.read_json(out, lines=True) if suffix == "jsonl" else pd.read_parquet(out)
    assert scored["score"].tolist() == [1, 2, 3, 4, 5]
    check_scored(scored, expected)


def test_stdin_one_comment_per_line_to_stdout(run_folder, expected, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(COMMENTS) + "\n"))
    assert score(run_folder) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == COMMENTS
    check_scored(pd.DataFrame(rows), expected)


def test_an_empty_text_is_an_error_row_and_the_others_are_scored(run_folder, expected, tmp_path, capsys):
    source = tmp_path / "comments.csv"
    pd.DataFrame({"text": [COMMENTS[0], "", "   ", COMMENTS[1]]}).to_csv(source, index=False)
    assert score(run_folder, str(source)) == 0
    output = capsys.readouterr()
    scored = pd.read_csv(io.StringIO(output.out), keep_default_na=False)
    assert scored["error"].tolist() == ["", "empty text", "empty text", ""]
    assert scored["label"].tolist() == [expected[0]["label"], "", "", expected[1]["label"]]
    assert "2 error rows" in output.err


def test_threshold_overrides_the_runs(run_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("you idiot\n"))
    assert score(run_folder, "--threshold", "0") == 0
    assert json.loads(capsys.readouterr().out)["label"] == TOXIC
    monkeypatch.setattr(sys, "stdin", io.StringIO("you idiot\n"))
    assert score(run_folder, "--threshold", "1") == 0
    assert json.loads(capsys.readouterr().out)["label"] == NOT_TOXIC


@pytest.mark.parametrize("name, content, args, message", [
    ("comments.csv", "id,comment\n1,hello\n", ["--text-column", "body"], "has no column 'body'"),
    ("comments.csv", "id,score\n1,2\n", [], "has none of the text columns"),
    ("missing.csv", None, [], "no such file"),
    ("comments.csv", "", [], "is empty"),
    ("comments.csv", "text\n", [], "has no rows to score"),
    ("comments.jsonl", "", [], "has no rows to score"),
    ("comments.jsonl", '{"text": "unfinished', [], "could not read"),
    ("comments.parquet", "not parquet at all", [], "could not read"),
    ("comments.txt", "hello\n", [], "must end in one of"),
    ("comments.csv", "text\nhello\n", ["--out", "scored.xlsx"], "must end in one of"),
    ("comments.csv", "text\nhello\n", ["--threshold", "2"], "between 0 and 1"),
], ids=["missing-column", "no-text-column", "missing-file", "empty-file", "header-only", "empty-jsonl",
        "malformed-jsonl", "corrupt-parquet", "unknown-format", "unknown-output-format", "bad-threshold"])
def test_bad_input_gets_a_one_line_error(run_folder, tmp_path, capsys, monkeypatch, name, content, args, message):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / name).write_text(content)
    assert score(run_folder, name, *args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert not (tmp_path / "scored.xlsx").exists()


def test_empty_stdin_and_a_missing_model_get_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert predict.main(["--model", str(tmp_path)]) == 2
    assert "stdin is empty" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert predict.main(["--model", str(tmp_path / "nothing")]) == 2
    assert "is no run: needs config.json" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [(b"\xff\xfe", "is unreadable (UnicodeDecodeError"),
                                              (b"[1, 2]", "is not a history.json written by train.py")])
def test_a_run_with_a_malformed_history_gets_a_one_line_error(run_folder, tmp_path, capsys, monkeypatch,
                                                               content, message):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in run_folder.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "history.json").write_bytes(content)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert predict.main(["--model", str(broken)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


# --- one predict path -------------------------------------------------------------------------

def test_web_app_scoring_command_and_evaluate_give_the_same_probability(run_folder, tmp_path, capsys):
    """The same comments through evaluate.py's inference, predict.py and the web app's HTTP API (batching on)."""
    history = json.loads((run_folder / "history.json").read_text())
    evaluated = evaluate.load_scorer(run_folder, history).predict(COMMENTS)

    source = tmp_path / "comments.csv"
    pd.DataFrame({"text": COMMENTS}).to_csv(source, index=False)
    assert score(run_folder, str(source), "--out", str(tmp_path / "scored.csv")) == 0
    scored = pd.read_csv(tmp_path / "scored.csv")["toxic_probability"].tolist()

    app, _, _ = serving_app(run_folder, precision="fp32", batching=BatchSettings(),
                            torch_threads=torch.get_num_threads())
    with serve(app) as address:
        status, reply = post_json(address, {"texts": COMMENTS})
    served = [result["toxic_probability"] for result in reply["results"]]

    assert status == 200
    assert scored == pytest.approx(list(evaluated), abs=1e-4)
    assert served == pytest.approx(list(evaluated), abs=1e-4)
    assert len({round(p, 4) for p in evaluated}) == len(COMMENTS), "the tiny model tells the comments apart"
