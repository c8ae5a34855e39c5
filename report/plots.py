"""The report's figures: training-loss curves, test ROC curves, test metrics side by side, and the
behavioural pass rates as a heat map.

Each figure is drawn on a ``matplotlib.figure.Figure``, which renders with the Agg backend
and touches no global pyplot state, so the report also works on a machine without a display.
A method keeps its colour in every figure.
"""
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from report.quality import RunPredictions
from report.runs import METHOD_ORDER, Run
from training.files import write_atomically

BAR_METRICS = (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
               ("macro_f1", "Macro-F1"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"))


def save_png(figure: Figure, path: Path) -> None:
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=120))


def method_colour(method: str):
    """A fixed tab10 colour per method; methods outside the study share the remaining colours."""
    index = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER) + sum(map(ord, method)) % 5
    return colormaps["tab10"](index)


def epoch_fractions(steps: list[dict]) -> np.ndarray:
    """x position of each logged step: epochs done plus the share of the current epoch done."""
    epochs = np.array([step["epoch"] for step in steps])
    x = np.zeros(len(steps))
    for position, epoch in enumerate(sorted(set(epochs))):
        in_epoch = np.flatnonzero(epochs == epoch)
        x[in_epoch] = position + np.arange(1, len(in_epoch) + 1) / len(in_epoch)
    return x


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start): a trailing smoother."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_loss_curves(runs: list[Run], path: Path) -> None:
    """Per-step training loss of each method, raw (faint) and smoothed, against epochs."""
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    for run in runs:
        steps = run.history["steps"]
        if not steps:
            continue
        x, loss = epoch_fractions(steps), np.array([step["loss"] for step in steps])
        colour = method_colour(run.method)
        axes.plot(x, loss, color=colour, alpha=0.2, linewidth=0.8)
        axes.plot(x, moving_average(loss, max(1, len(loss) // 20)), color=colour, linewidth=2, label=run.name)
    axes.set(title="Training loss per step (smoothed; faint: raw)", xlabel="epoch", ylabel="training loss")
    axes.grid(alpha=0.3)
    axes.legend(title="run")
    save_png(figure, path)


def plot_roc_curves(records: list[dict], predictions: dict[str, RunPredictions], path: Path) -> None:
    figure = Figure(figsize=(6, 6), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    for record in records:
        run = predictions[record["name"]]
        false_positive_rate, true_positive_rate, _ = roc_curve(run.labels, run.probs)
        auc = record["test"]["at_validation_threshold"]["roc_auc"]
        axes.plot(false_positive_rate, true_positive_rate, color=method_colour(record["method"]), linewidth=2,
                  label=f"{record['name']} (AUC {auc:.3f})")
    axes.set(title="ROC curves on the test split", xlabel="false positive rate (clean comments flagged)",
             ylabel="true positive rate (insults caught)", xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    save_png(figure, path)


def plot_test_metrics(records: list[dict], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per run, at the validation-chosen threshold."""
    figure = Figure(figsize=(10, 5), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(records), 1)
    groups = np.arange(len(BAR_METRICS))
    for i, record in enumerate(records):
        test = record["test"]["at_validation_threshold"]
        values = [np.nan_to_num(test[key]) for key, _ in BAR_METRICS]
        axes.bar(groups + (i - (len(records) - 1) / 2) * width, values, width,
                 color=method_colour(record["method"]), label=record["name"])
    axes.set_xticks(groups, [title for _, title in BAR_METRICS])
    axes.set(title="Test metrics (threshold chosen on validation)", ylabel="score", ylim=(0, 1))
    axes.grid(axis="y", alpha=0.3)
    figure.legend(title="run", loc="outside right upper")
    save_png(figure, path)


def plot_capability_heatmap(records: list[dict], path: Path) -> None:
    """Behavioural pass rate per capability (columns) and run (rows): red fails, green passes."""
    capabilities = list(records[0]["behaviour"]["pass_rates"])
    rates = np.array([[r["behaviour"]["pass_rates"][c]["rate"] for c in capabilities] for r in records])
    figure = Figure(figsize=(1.3 * len(capabilities) + 2.5, 0.45 * len(records) + 2.2), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(rates, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (row, column), rate in np.ndenumerate(rates):
        axes.text(column, row, f"{100 * rate:.0f}", ha="center", va="center", fontsize=9,
                  color="white" if abs(rate - 0.5) > 0.35 else "black")
    axes.set_xticks(range(len(capabilities)), [c.replace(" ", "\n", 1) for c in capabilities], fontsize=9)
    axes.set_yticks(range(len(records)), [r["name"] for r in records])
    axes.set(title="Behavioural tests: % of cases passed at each run's validation threshold")
    figure.colorbar(image, ax=axes, label="pass rate", fraction=0.04)
    save_png(figure, path)


def draw_figures(runs: list[Run], records: list[dict], predictions: dict[str, RunPredictions],
                 out: Path) -> dict[str, str]:
    """The figures, written into ``out``: title -> file name.

    Loss, ROC and metrics show the primary run of each method; the behavioural heat map every run.
    """
    primary = [record for record in records if record["primary"]]
    figures = {
        "Training loss": ("training_loss.png", lambda path: plot_loss_curves([r for r in runs if r.primary], path)),
        "ROC curves on the test split": ("roc_test.png", lambda path: plot_roc_curves(primary, predictions, path)),
        "Test metrics": ("test_metrics.png", lambda path: plot_test_metrics(primary, path)),
        "Behavioural tests: pass rate per capability": (
            "behaviour_heatmap.png", lambda path: plot_capability_heatmap(records, path)),
    }
    for filename, draw in figures.values():
        draw(out / filename)
    return {title: filename for title, (filename, _) in figures.items()}
