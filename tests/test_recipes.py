"""train.py's recipes are the literals of its RECIPES table: what make tune chose, and nothing read at run time.

``make tune`` searches the learning rate and epochs on validation and writes its choices to
results/tuned_defaults.json; train.py repeats them as literals, so that a reader sees every recipe
in one table and deleting results/ changes no run. These tests keep the two from drifting apart.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import train
from experiments import tune

ROOT = Path(__file__).resolve().parent.parent
TUNED = json.loads((ROOT / "results" / "tuned_defaults.json").read_text())["methods"]
NOT_SEARCHED = [method for method in tune.TUNED if method not in TUNED]
PRINT_RECIPES = ("import json, train; print(json.dumps({m: vars(train.parse_args(['--method', m])) "
                 "for m in train.RECIPES}))")


@pytest.mark.parametrize("method", [name for name, recipe in train.RECIPES.items() if name in TUNED])
def test_each_recipe_is_what_make_tune_chose_for_it(method):
    recipe = train.RECIPES[method]
    assert (recipe.lr, recipe.epochs) == (TUNED[method]["lr"], TUNED[method]["epochs"])
    if "temperature" in TUNED[method]:  # a method whose distillation settings were searched too
        assert (recipe.temperature, recipe.alpha_kd) == (TUNED[method]["temperature"], TUNED[method]["alpha_kd"])
    args = train.parse_args(["--method", method])
    assert (args.lr, args.epochs, args.recipe_from) == (recipe.lr, recipe.epochs, "train.py")


def test_make_tune_searches_every_method_of_the_table():
    assert set(tune.TUNED) == {name for name, recipe in train.RECIPES.items() if recipe.start != "tfidf"}
    assert set(TUNED) <= set(tune.TUNED)


def test_a_method_not_searched_yet_is_named_so_in_tuning_md():
    tuning = (ROOT / "results" / "tuning.md").read_text()
    if NOT_SEARCHED:
        assert f"Not searched yet, so train.py's recipe is not a choice of this search: {', '.join(NOT_SEARCHED)}." \
            in tuning
    else:
        assert "Not searched yet" not in tuning


def test_the_recipes_do_not_change_when_results_is_missing(tmp_path):
    assert "results/" not in (ROOT / "train.py").read_text(), "train.py must not read anything under results/"
    for entry in ROOT.iterdir():  # a copy of the code, without results/
        if entry.name not in ("results", "runs", "tests", "notebooks") and not entry.name.startswith("."):
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, tmp_path / entry.name)
    assert not (tmp_path / "results").exists()
    environment = {**os.environ, "PYTHONPATH": ""}
    without, here = (json.loads(subprocess.run([sys.executable, "-c", PRINT_RECIPES], cwd=folder, env=environment,
                                               capture_output=True, text=True, check=True).stdout)
                     for folder in (tmp_path, ROOT))
    assert without == here
    assert {method: (args["lr"], args["epochs"]) for method, args in without.items()} == {
        method: (recipe.lr, recipe.epochs) for method, recipe in train.RECIPES.items()}


def test_layers_are_the_recipes_unless_given_and_only_for_a_six_layer_student(capsys):
    assert train.parse_args(["--method", "lora"]).layers == "even"
    assert train.parse_args(["--method", "lora", "--layers", "odd"]).layers == "odd"  # of --model, for lora
    assert train.parse_args(["--method", "odd"]).layers == "odd"
    assert train.parse_args(["--method", "teacher"]).layers is None
    for argv in (["--method", "teacher", "--layers", "odd"], ["--method", "lora", "--layers", " "]):
        with pytest.raises(SystemExit):
            train.parse_args(argv)
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("error: ")
