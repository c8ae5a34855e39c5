"""The report's figures: training-loss curves, test ROC curves, test ROC-AUC with its interval per
method, the trade-off of quality against cost, and the behavioural pass rates as a heat map.

Each figure is drawn on a ``matplotlib.figure.Figure``, which renders with the Agg backend
and touches no global pyplot state, so the report also works on a machine without a display.
A method keeps its colour in every figure.
"""
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from sklearn.metrics import roc_curve

from evaluate import METHOD_ORDER, Run, RunPredictions
from training.files import write_atomically

MARKERS = {"method": "o", "control": "s", "baseline": "D", "ablation": "^"}


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


ABLATION_COLOURS = ("black", "dimgray", "saddlebrown", "darkmagenta", "darkgoldenrod", "teal")


def point_colours(points: list[dict]) -> list:
    """A method keeps its colour; each family's best ablation gets a dark colour of its own."""
    ablations = iter(ABLATION_COLOURS * len(points))
    return [next(ablations) if p["kind"] == "ablation" else method_colour(p["method"]) for p in points]


def point_label(point: dict) -> str:
    return f"{point['label']} ({point['n_seeds']} seed{'s' if point['n_seeds'] > 1 else ''})"


def interval_errors(points: list[dict]) -> np.ndarray:
    """matplotlib's error bar lengths below and above each point's ROC-AUC, from its 95% interval."""
    return np.array([[p["roc_auc"] - p["ci95"][0] for p in points], [p["ci95"][1] - p["roc_auc"] for p in points]])


def plot_roc_auc_dots(points: list[dict], path: Path) -> None:
    """Each method's mean test ROC-AUC with its 95% interval, best at the top, on an axis zoomed to the data.

    Bars from 0 would make every difference invisible: the methods differ in the second decimal.
    """
    colours = dict(zip((p["label"] for p in points), point_colours(points)))
    points = sorted(points, key=lambda p: p["roc_auc"])
    figure = Figure(figsize=(9, 0.4 * len(points) + 1.8), layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(len(points))
    axes.errorbar([p["roc_auc"] for p in points], rows, xerr=interval_errors(points), fmt="none", ecolor="grey",
                  capsize=3, linewidth=1)
    for row, point in zip(rows, points):
        axes.plot(point["roc_auc"], row, MARKERS[point["kind"]], color=colours[point["label"]], markersize=7)
    axes.set_yticks(rows, [point_label(p) for p in points])
    axes.set(title="Test ROC-AUC: mean over seeds, 95% interval\n(seeds and test comments resampled)",
             xlabel="test ROC-AUC (axis zoomed to the data)")
    axes.grid(axis="x", alpha=0.3)
    save_png(figure, path)


def plot_trade_off(points: list[dict], path: Path) -> None:
    """Test ROC-AUC with its 95% interval against (a) trainable parameters and (b) training time, both log."""
    figure = Figure(figsize=(12, 6.5), layout="constrained")
    panels = figure.subplots(1, 2, sharey=True)
    colours = point_colours(points)
    for axes, key, xlabel, tick in (
            (panels[0], "trainable", "(a) trainable parameters (log scale)", lambda v, _: f"{v / 1e6:g} M"),
            (panels[1], "minutes", "(b) wall time of train.py, minutes (log scale)", lambda v, _: f"{v:g}")):
        for point, colour in zip(points, colours):
            if point[key]:
                axes.errorbar(point[key], point["roc_auc"], yerr=interval_errors([point]), fmt=MARKERS[point["kind"]],
                              color=colour, ecolor=colour, alpha=0.9, capsize=3, markersize=8,
                              label=point_label(point))
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(tick))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set(xlabel=xlabel)
        axes.grid(alpha=0.3, which="both")
    panels[0].set(ylabel="test ROC-AUC (mean over seeds, 95% interval)")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    figure.suptitle("Quality against cost: each method, and the best ablation of each family (▲). "
                    "A student's time leaves out its teacher's.")
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
                 out: Path, points: list[dict]) -> dict[str, str]:
    """The figures, written into ``out``: title -> file name.

    Loss and ROC curves show the primary run of each method; the behavioural heat map every run;
    ROC-AUC and the trade-off each method over its seeds, and the best ablation of each family
    (``points``, from ``report.ablations.trade_off_points``).
    """
    primary = [record for record in records if record["primary"]]
    figures = {
        "Training loss": ("training_loss.png", lambda path: plot_loss_curves([r for r in runs if r.primary], path)),
        "ROC curves on the test split": ("roc_test.png", lambda path: plot_roc_curves(primary, predictions, path)),
        "Test ROC-AUC with 95% intervals": ("test_roc_auc.png", lambda path: plot_roc_auc_dots(points, path)),
        "Trade-off: test ROC-AUC against trainable parameters and training time": (
            "trade_off.png", lambda path: plot_trade_off(points, path)),
        "Behavioural tests: pass rate per capability": (
            "behaviour_heatmap.png", lambda path: plot_capability_heatmap(records, path)),
    }
    for filename, draw in figures.values():
        draw(out / filename)
    return {title: filename for title, (filename, _) in figures.items()}
