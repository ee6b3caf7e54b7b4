"""The written side of an experiment: numbers as the tables print them, markdown tables, CSV files, the command
that reproduces a table, and ``finish`` (every file an experiment writes: OUT/NAME.csv, -summary.csv, .md, .json).

EXPERIMENTS.md is assembled from the markdown written here (``report``), so no number there is typed by hand.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from ..utils import write_text_atomic
from .records import Experiment, ExperimentConfig, Printer, Result, short_value
from .stats import mean_std

# Fields that never become flags of the reproducing command (runtime only).
NOT_FLAGS = ("out", "device", "workers", "progress", "reuse")


def top5_meaningful(classes: int | None) -> bool:
    """Top-5 error says something only with more than 5 classes (with 5 or fewer every label is in the top 5, so
    the error is 0 by construction): with fewer, tables report it as n/a."""
    return classes is None or classes > 5


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}"


def fmt_mean_std(values, scale: float = 100.0, digits: int = 1) -> str:
    """'12.3 ± 0.4' (sample std over seeds), '12.3' for one value, '—' for none."""
    m, s, n = mean_std(values)
    if m is None:
        return "—"
    if s is None:
        return f"{scale * m:.{digits}f}"
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def duration(secs: float) -> str:
    """'12 s' or '3.4 min'."""
    return f"{secs / 60:.1f} min" if secs >= 60 else f"{secs:.0f} s"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A GitHub markdown table of ``rows``; columns are (key, header); values are printed as they are."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in keys})
    write_text_atomic(path, buf.getvalue())
    return path


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return v


def command_line(exp: Experiment, cfg: ExperimentConfig) -> str:
    """The ``alexnet experiment`` command that reproduces ``cfg`` (resolved): the experiment's name, --data, --out,
    and a flag for every field that differs from what the command would get without it."""
    base = ExperimentConfig().resolve(exp.defaults)
    parts = ["alexnet experiment", exp.name, "--data", str(cfg.data)]
    for f in dataclasses.fields(cfg):
        if f.name in NOT_FLAGS or f.name == "data":
            continue
        v, d = getattr(cfg, f.name), getattr(base, f.name)
        if v == d or v is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            parts.append(flag if v else "--no-" + f.name.replace("_", "-"))
        elif isinstance(v, (list, tuple)):
            parts += [flag, *(short_value(x) for x in v)]
        else:
            parts += [flag, short_value(v)]
    parts += ["--out", str(cfg.out)]
    return " ".join(parts)


def wall_text(result: Result) -> str:
    """The wall time of ``result`` for the table's footer, saying how many of its training runs were reused."""
    secs = result.wall_seconds
    if secs is None:
        return "not measured"
    # a run folder can appear in several rows (relu-vs-tanh: the lr search and the final table); it was reused from
    # an earlier invocation when no row of this one trained it
    runs: dict[str, bool] = {}
    train_secs: dict[str, float] = {}
    for r in result.rows:
        if "reused" in r:
            key = r.get("run_dir") or str(len(runs))
            runs[key] = runs.get(key, True) and bool(r["reused"])
            train_secs[key] = r.get("train_seconds") or 0.0
    reused = sum(runs.values())
    txt = duration(secs)
    if reused:
        txt += (f"; {reused} of {len(runs)} training runs reused from earlier invocations (identical configs); "
                f"the {len(runs)} runs' training epochs took {duration(sum(train_secs.values()))} in all")
    return txt


def finish(result: Result, cfg: ExperimentConfig, markdown: str, printer: Printer,
           exp: Experiment | None = None) -> Result:
    """Write OUT/NAME.csv (rows), OUT/NAME-summary.csv, OUT/NAME.md and OUT/NAME.json (the resolved config, the
    files and the command that reproduces them); print the markdown."""
    out = Path(cfg.out)
    elapsed = exp.elapsed() if exp is not None else None
    if elapsed is not None:
        result.wall_seconds = elapsed
    command = command_line(exp, cfg) if exp is not None else None
    if command:
        markdown += f"\n\n**Command:** `{command}` (wall time {wall_text(result)})"
    out.mkdir(parents=True, exist_ok=True)
    result.files["csv"] = str(write_csv(out / f"{result.name}.csv", result.rows))
    if result.summary:
        result.files["summary_csv"] = str(write_csv(out / f"{result.name}-summary.csv", result.summary))
    write_text_atomic(out / f"{result.name}.md", markdown + "\n")
    result.files["markdown"] = str(out / f"{result.name}.md")
    write_text_atomic(out / f"{result.name}.json", json.dumps({"experiment": result.name, "config": cfg.to_dict(),
                                                               "command": command, "files": result.files},
                                                              indent=2) + "\n")
    result.markdown = markdown
    printer("")
    printer(markdown)
    printer("")
    printer("written: " + ", ".join(str(v) for v in result.files.values()))
    return result


def setup_line(cfg: ExperimentConfig, data: Path, arch: str, tcfg, show_lr: bool = True,
               init: str | None = None) -> str:
    """One sentence naming the data and the settings every variant shares (for the markdown); ``init`` replaces the
    config's init (an experiment that runs several)."""
    model = tcfg.model
    size = f"{tcfg.resize}->{tcfg.crop} px" if tcfg.resize else "native size"
    bits = [f"data `{data}`", f"arch `{arch}`", size, f"{tcfg.epochs} epoch{'s' if tcfg.epochs != 1 else ''}",
            f"batch {tcfg.batch_size}"]
    bits.append(f"lr {tcfg.lr:g} ({tcfg.schedule})" if show_lr else f"{tcfg.schedule} lr")
    init_text = f"inits {init}" if init and "," in init else f"init {init or model.get('init') or 'as the network'}"
    bits += [f"recipe {tcfg.recipe}", init_text,
             f"weight decay {tcfg.weight_decay:g}"]
    if "fc_size" in model:
        bits.append(f"fc6/fc7 {model['fc_size']} units")
    if tcfg.steps_per_epoch:
        bits.append(f"at most {tcfg.steps_per_epoch} batches per epoch")
    bits.append(f"seed{'s' if len(cfg.seeds) > 1 else ''} {', '.join(str(s) for s in cfg.seeds)}")
    return "; ".join(bits)
