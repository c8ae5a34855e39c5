"""Run folders behave like Hub models: class names in config.json, a model card, plain pipelines."""
import json
import re
from functools import partial

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import pipeline

import report.__main__ as full_report
from experiments import train_extras
from conftest import tiny_classifier, tiny_history, tiny_tokenizer
from test_evaluate import load_calls, project, write_run  # noqa: F401 - fixtures of the report tests
from training.run_folder import save_run
from report.model_card import CARD_FILE, method_description, write_model_card
from train import RECIPES, parse_args
from data.labels import ID2LABEL
from serving.precision import load_predictor
from webapp.app import Predictor

NOT_TOXIC, TOXIC = ID2LABEL[0], ID2LABEL[1]


@pytest.fixture
def saved_run(tmp_path):
    folder = tmp_path / "runs" / "odd"
    history = tiny_history("odd", threshold=0.497, out=str(folder))
    save_run(folder, tiny_classifier(layers=2), tiny_tokenizer(), history)
    write_model_card(folder, history)
    return folder


def test_a_plain_pipeline_answers_toxic_or_not_toxic(saved_run):
    config = json.loads((saved_run / "config.json").read_text())
    assert config["id2label"] == {"0": NOT_TOXIC, "1": TOXIC}
    assert config["label2id"] == {NOT_TOXIC: 0, TOXIC: 1}
    answers = pipeline("text-classification", model=str(saved_run))(["you idiot", "thanks for the reply"])
    assert {answer["label"] for answer in answers} <= {TOXIC, NOT_TOXIC}


def test_the_card_has_hub_metadata_and_names_the_threshold(saved_run):
    text = (saved_run / CARD_FILE).read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["pipeline_tag"] == "text-classification" and header["library_name"] == "transformers"
    metrics = header["model-index"][0]["results"][0]["metrics"]
    assert {"type": "roc_auc", "value": 0.85, "name": "validation ROC-AUC"} in metrics
    assert ModelCard.load(saved_run / CARD_FILE).data.pipeline_tag == "text-classification"
    assert "**0.497**" in text and "`validation_threshold`" in text
    for heading in ("## Model", "## Data and labels", "## Scores", "## Decision threshold", "## Speed and size",
                    "## Intended use and limits"):
        assert heading in text
    assert "No test scores yet" in text


@pytest.mark.parametrize("text_prefix", ["", "query: "])
def test_the_cards_snippet_applies_the_runs_threshold(tmp_path, text_prefix):
    """The card's three lines, run as written, give the predictor's labels, not the pipeline's argmax,
    on the comments as the run reads them (with its text prefix)."""
    texts = ["you idiot", "thanks for the reply"]
    model = tiny_classifier(layers=2)
    folder = tmp_path / "odd"
    history = partial(tiny_history, "odd", out=str(folder), text_prefix=text_prefix)
    save_run(folder, model, tiny_tokenizer(), history(threshold=0.5))
    probabilities = [v["toxic_probability"] for v in load_predictor(folder, precision="fp32").predict(texts)]
    assert max(probabilities) < 0.5, "the tiny model says not_toxic by argmax"
    threshold = round(min(probabilities) - 0.001, 3)  # so the run's threshold makes both toxic
    save_run(folder, model, tiny_tokenizer(), history(threshold=threshold))
    write_model_card(folder, history(threshold=threshold))

    card = (folder / CARD_FILE).read_text()
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert len(snippet.strip().splitlines()) == 3
    assert f'"{text_prefix}you idiot"' in snippet and (f"prefixed with `'{text_prefix}'`" in card) == bool(text_prefix)
    namespace = {}
    exec(snippet, namespace)  # noqa: S102 - our own generated code
    assert namespace["is_toxic"] == [True, True]
    assert [v["label"] for v in load_predictor(folder, precision="fp32").predict(texts)] == [TOXIC, TOXIC]


def test_the_report_adds_test_scores_and_speed_to_the_cards(project, load_calls):
    """python -m report rewrites each run's card with its test scores, at the threshold the folder applies."""
    results = full_report.main(["--threads", "1", "--no-readme"])
    odd = next(record for record in results["runs"] if record["name"] == "odd")
    card = (project / "runs" / "odd" / CARD_FILE).read_text()
    assert "No test scores yet" not in card
    assert f"| test (at 0.500) | {odd['test']['at_validation_threshold']['roc_auc']:.3f} |" in card
    assert "ms a comment one at a time" in card and f"{odd['size_mb']:.1f} MB" in card
    header = yaml.safe_load(card.split("---\n")[1])
    splits = {result["dataset"]["split"] for result in header["model-index"][0]["results"]}
    assert splits == {"test"}, "the tiny runs' histories hold no validation metrics, evaluate adds test ones"


def test_a_folder_saved_without_class_names_still_serves_toxic_labels(tmp_path):
    """Runs saved before id2label existed (LABEL_0 / LABEL_1) load, and the predictor still names the classes."""
    folder = tmp_path / "old"
    tiny_classifier(layers=2).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    (folder / "history.json").write_text(json.dumps({"validation_threshold": 0.0}))
    assert "toxic" not in (folder / "config.json").read_text()
    assert Predictor.from_folder(folder).predict(["you idiot"])[0]["label"] == TOXIC


@pytest.mark.parametrize("method", [name for name, recipe in RECIPES.items() if recipe.start != "tfidf"])
def test_every_method_is_described_from_its_recipe(method):
    args = vars(parse_args(["--method", method]))
    recipe = RECIPES[method]
    text = method_description({"method": method, "args": args, "layers": [2, 4] if recipe.layers else None})
    assert ("LoRA (rank 8, scaling α/r = 16/8 = 2, on query,value)" in text) == recipe.lora
    assert ("every weight fine-tuned" in text) == (not recipe.lora)
    assert ("0.5·CE + 0.5·KD + 0.1·cosine" in text) == (recipe.loss == "kd")
    assert ("layers [2, 4]" in text) == (recipe.layers is not None)
    assert ("fine-tuned teacher `runs/teacher`" in text) == (recipe.start == "teacher-layers")
    assert "transfer set" not in text and "averaged logits" not in text


def test_a_transfer_set_and_an_ensemble_of_teachers_are_named():
    args = vars(train_extras.parse_args(["--method", "odd", "--soft-labels-from", "runs/t1,runs/t2",
                                         "--transfer-set", "x.csv"])[1])
    text = method_description({"method": "odd", "args": args, "layers": [1, 3],
                               "transfer_set": {"used": 1234, "source": "x.csv"}})
    assert text.endswith("its soft labels the averaged logits of the teachers runs/t1,runs/t2, and on 1,234 "
                         "unlabelled comments of the transfer set x.csv through the soft labels alone")


@pytest.mark.parametrize("dataset, said", [("insults", "insults a participant of the conversation"),
                                           ("toxic-comments", "whoever the comment is aimed at"),
                                           ("my.csv", "`my.csv`")])
def test_the_card_says_what_the_label_of_its_dataset_means(tmp_path, dataset, said):
    history = tiny_history("odd", dataset=dataset)
    save_run(tmp_path / "run", tiny_classifier(layers=2), tiny_tokenizer(), history)
    write_model_card(tmp_path / "run", history)
    text = (tmp_path / "run" / CARD_FILE).read_text()
    assert "- **Dataset**: " in text and said in text.split("- **Dataset**: ")[1].split("\n")[0]
    assert yaml.safe_load(text.split("---\n")[1]).get("language") == (None if dataset == "my.csv" else ["en"])
