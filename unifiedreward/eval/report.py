"""Reports of a run: ``results.json``, ``results.md`` (ours beside the published rows), ``results.png``."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unifiedreward.eval.types import Benchmark, MetricGroup
from unifiedreward.io import to_jsonable, write_json_atomic

logger = logging.getLogger(__name__)

__all__ = ["NOT_COMPUTED", "fmt", "format_results", "metric_cell", "plot_results", "render_markdown", "write_reports"]

#: Table cell of a metric this run did not compute (e.g. margin metrics under ``--scoring generate``).
NOT_COMPUTED = "n/a"


def fmt(value: Any, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, or ``"–"`` for ``None`` / ``nan`` (every table cell of every report)."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def metric_cell(values: Mapping[str, Any], key: str, digits: int = 2) -> str:
    """The table cell of metric ``key`` in ``values`` (a results ``headline``, or a dict copied from one).

    ``"n/a"`` (:data:`NOT_COMPUTED`) when the run did not compute the metric (the key is absent: e.g. GenAI-Bench's
    margin metrics ``with_ties`` / ``without_ties`` exist only with ``--scoring probabilities``); ``"–"`` when it was
    computed but is undefined (``None`` / ``nan``: an empty denominator); else the number (:func:`fmt`).
    """
    return fmt(values[key], digits) if key in values else NOT_COMPUTED


def _ours_label(results: Mapping[str, Any]) -> str:
    settings = results["settings"]
    model = Path(str(settings.get("model"))).name if settings.get("model") else settings.get("backend")
    return f"**ours: {model}**"


def _ours_source(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    order = f"order {s['order']}" + (f" (seed {s['seed']})" if s["order"] == "random" else "")
    return f"this run: split {s.get('split')}, {s.get('template')}, {order}, scoring {s['scoring']}"


def render_markdown(bench: Benchmark, results: Mapping[str, Any]) -> str:
    """``results.md``: settings, counts, then per metric group our row beside the published rows."""
    s, c, headline = results["settings"], results["counts"], results["headline"]
    lines = [
        f"# {bench.title}: results",
        "",
        f"Model `{s.get('model') or s.get('backend')}` ({s.get('backend')}, family {s.get('family')}, version {s.get('version')}), "
        f"template `{s.get('template')}`, order `{s['order']}`"
        + (
            f" (seed {s['seed']}; {c['swapped']} of {c['items']} pairs shown swapped)"
            if s["order"] == "random"
            else ""
        )
        + f", scoring `{s['scoring']}`, split `{s.get('split')}`"
        + (f", first {s['limit']} items" if s.get("limit") else "")
        + ".",
        "",
        (
            f"Items {c['items']}: {c['valid']} valid, {c['invalid']} unparsed, {c['inconsistent']} order-inconsistent, "
            f"{c['media_errors']} media errors (left out of the metrics)."
        ),
        "",
    ]
    for group in bench.groups:
        keys = [key for key, _ in group.columns]
        published = [row for row in bench.published if any(row.values.get(k) is not None for k in keys)]
        if not any(k in headline for k in keys):
            continue  # not computed in this run (e.g. margin metrics without --scoring probabilities)
        lines += [f"## {group.title}", ""]
        if group.note:
            lines += [group.note, ""]
        lines.append("| model | " + " | ".join(h for _, h in group.columns) + " | source |")
        lines.append("|---|" + "---:|" * len(keys) + "---|")
        lines.append(
            f"| {_ours_label(results)} | "
            + " | ".join(metric_cell(headline, k) for k in keys)
            + f" | {_ours_source(results)} |"
        )
        for row in published:
            values = " | ".join(fmt(row.values.get(k)) for k in keys)
            lines.append(f"| {row.model} | {values} | {row.source} |")
        lines.append("")
    lines += ["## Metric definitions", ""]
    lines += [f"* **{key}**: {text}" for key, text in results["metric_definitions"].items()]
    if bench.notes:
        lines += ["", "## Notes", ""]
        lines += [f"* {note}" for note in bench.notes]
    if c["not_valid_reasons"]:
        lines += ["", "## Answers without a verdict", ""]
        lines += [f"* {r['count']} x {r['reason']} (e.g. `{r['example'][:120]}`)" for r in c["not_valid_reasons"]]
    lines.append("")
    return "\n".join(lines)


def plot_results(bench: Benchmark, results: Mapping[str, Any], path: Path) -> None:
    """``results.png``: one panel per metric group with a value; ours highlighted beside the published rows."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    headline = results["headline"]
    panels = []
    for group in bench.groups:
        keys = [key for key, _ in group.columns]
        if not any(k in headline for k in keys):
            continue
        rows = [(_ours_label(results).strip("*"), {k: headline.get(k) for k in keys})]
        rows += [(r.model, r.values) for r in bench.published if any(r.values.get(k) is not None for k in keys)]
        panels.append((group, rows))
    if not panels:
        panels = [(MetricGroup("no metrics", ()), [])]
    heights = [max(1.6, 0.22 * max(1, len(rows)) * max(1, len(g.columns)) + 0.9) for g, rows in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, min(sum(heights) + 0.6, 40)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (group, rows) in zip(axes[:, 0], panels, strict=True):
        n_cols = max(1, len(group.columns))
        bar = 0.8 / n_cols
        for j, (key, header) in enumerate(group.columns):
            values = [row[1].get(key) for row in rows]
            ys = [i + j * bar for i in range(len(rows))]
            xs = [0.0 if v is None or math.isnan(v) else v for v in values]
            colors = [f"C{j}" for _ in rows]
            bars = ax.barh(ys, xs, height=bar, color=colors, label=header)
            bars[0].set_edgecolor("black")
            bars[0].set_linewidth(1.5)
            for y, v in zip(ys, values, strict=True):
                ax.text(0.5, y, fmt(v), va="center", fontsize=7)
        ax.set_yticks([i + 0.4 - bar / 2 for i in range(len(rows))])
        ax.set_yticklabels([row[0] for row in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("%")
        ax.set_title(group.title, fontsize=9)
        if group.columns:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{bench.title} (first row, outlined: this run)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(bench: Benchmark, results: Mapping[str, Any], output_dir: Path, *, plot: bool = True) -> None:
    """Write ``results.json``, ``results.md`` and (with ``plot``) ``results.png`` into ``output_dir``."""
    write_json_atomic(output_dir / "results.json", to_jsonable(results))
    (output_dir / "results.md").write_text(render_markdown(bench, results), encoding="utf-8")
    if plot:
        plot_results(bench, results, output_dir / "results.png")
    logger.info("wrote %s/results.{json,md%s}", output_dir, ",png" if plot else "")


def format_results(results: Mapping[str, Any]) -> str:
    """A few human-readable lines of a results dict."""
    c = results["counts"]
    head = ", ".join(f"{k} {fmt(v)}" for k, v in results["headline"].items())
    return (
        f"{results['title']}: {c['items']} items ({c['valid']} valid, {c['invalid']} unparsed, "
        f"{c['inconsistent']} inconsistent, {c['media_errors']} media errors)\n{head}"
    )
