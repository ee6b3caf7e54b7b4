"""``alexnet experiment NAME``: the paper's experiments, one command each; ``alexnet experiment list``."""
from __future__ import annotations

import dataclasses
import json

from ..choices import ARCHS, DEVICES_HELP, INITS, RECIPE_CHOICES, SCHEDULES
from ..experiments.records import (
    DEFAULT_DATA,
    DEFAULT_ROOT,
    SCALED_PAPER,
    SYNTH_DEFAULTS,
    ExperimentConfig,
    short_value,
)
from ..experiments.runs import FC_SIZED_ARCHS

# Config fields given by the flags of the same name (seeds, lr_grid and inits are lists: tuples in the config).
LIST_FIELDS = ("seeds", "lr_grid", "inits")
FIELDS = tuple(f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in LIST_FIELDS)
# The experiments whose network --arch chooses (relu-vs-tanh, towers, filters and neighbours fix theirs).
ARCH_EXPERIMENTS = ("lrn", "overlap-pool", "dropout", "augment")


def experiment_defaults(field: str, only: tuple | None = None, otherwise: str = "") -> str:
    """"(default: ...)" for ``field`` from the experiments' own DEFAULTS, grouped by value, e.g. "(default: 4 for
    relu-vs-tanh; 5 for lrn, overlap-pool, augment; else 6)"; ``otherwise`` says what the experiments without a
    default for it use (left out when empty: they do not use the field)."""
    from ..experiments import EXPERIMENTS

    groups: dict[str, list[str]] = {}
    rest = []
    for name, e in EXPERIMENTS.items():
        if only is not None and name not in only:
            continue
        v = e.defaults.get(field)
        if v is None:
            rest.append(name)
        else:
            text = " ".join(short_value(x) for x in v) if isinstance(v, (list, tuple)) else short_value(v)
            groups.setdefault(text, []).append(name)
    if otherwise and rest:
        groups[otherwise] = rest
    if len(groups) == 1:
        return f"(default: {next(iter(groups))})"
    *named, (last, _) = sorted(groups.items(), key=lambda kv: len(kv[1]))
    return "(default: " + "; ".join(f"{v} for {', '.join(names)}" for v, names in named) + f"; else {last})"


def train_default(field: str) -> str:
    """The default of a TrainConfig field the experiments leave to the trainer, as ``alexnet train --help`` says it."""
    from ..config import TrainConfig

    f = {f.name: f for f in dataclasses.fields(TrainConfig)}[field]
    return f.metadata.get("default_text") or short_value(f.default)


def register(sub) -> None:
    from ..experiments import EXPERIMENTS
    from . import HelpFormatter

    listing = "\n".join(f"  {name:<13} {e.title}" for name, e in EXPERIMENTS.items())
    p = sub.add_parser(
        "experiment", formatter_class=HelpFormatter, help="the paper's experiments (ReLU/tanh, LRN, pooling, ...)",
        description="Run one of the paper's experiments: every variant for every seed, then a result table "
                    "(OUT/NAME.csv, OUT/NAME-summary.csv, OUT/NAME.md) and a picture (OUT/NAME.png); each training "
                    "run keeps its folder under OUT/runs/ and is reused when run again with the same settings.\n\n"
                    f"experiments:\n{listing}\n\n"
                    "Defaults train the scaled networks on the embedded synthetic data (generated at --data when "
                    "that folder does not exist) in minutes on a small CPU; point --data at CIFAR-10 or ImageNet "
                    "and raise --epochs/--seeds/--resize/--crop/--fc-size for the paper's scale.\n\n"
                    "examples:\n"
                    "  alexnet experiment list\n"
                    "  alexnet experiment relu-vs-tanh --out runs/exp/relu-vs-tanh --inits paper --seeds 0 1 2 3\n"
                    "  alexnet experiment lrn --out runs/exp/lrn --epochs 10\n"
                    "  alexnet experiment relu-vs-tanh --data data/cifar10 --epochs 40 --lr-grid 0.03 0.01 0.003\n"
                    "  alexnet experiment filters --checkpoint runs/demo/best.pt --out runs/exp/filters\n"
                    f"  alexnet experiment report    # EXPERIMENTS.md from {DEFAULT_ROOT}/*/NAME.md")
    p.add_argument("name", choices=("list", "report", *EXPERIMENTS), metavar="NAME",
                   help=f"an experiment, 'list', or 'report' (EXPERIMENTS.md from the tables under --out, default "
                        f"{DEFAULT_ROOT})")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="dataset folder (ImageFolder/ILSVRC, CIFAR-10, ...); synthetic data is generated there if "
                        "it does not exist")
    p.add_argument("--out", default=None,
                   help=f"output folder (default: {DEFAULT_ROOT}/NAME; filters and neighbours share .../figures)")
    _add_training_flags(p)
    _add_experiment_flags(p)
    g = p.add_argument_group("report")
    g.add_argument("--template", default="docs/experiments/EXPERIMENTS.template.md",
                   help="the report's prose, with <!-- experiment: NAME --> where each table goes")
    g.add_argument("--report", default="EXPERIMENTS.md", help="the report written")
    g.add_argument("--figures", default="docs/experiments", help="where the report's PNGs are copied")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help=DEVICES_HELP)
    g.add_argument("--workers", type=int, default=None,
                   help=f"data-loading worker processes (default: {train_default('workers')})")
    g.add_argument("--no-reuse", dest="reuse", action="store_false",
                   help="retrain runs that already finished (default: reuse finished runs with identical settings)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g.add_argument("--json", action="store_true", help="print the result (rows, summary, files) as JSON at the end")
    p.set_defaults(func=run)


def _add_training_flags(p) -> None:
    """What every training run of an experiment shares; None (not given) means the experiment's own default."""
    by_data = "from the data and network; on image folders {} with cifar, {} with the others"
    p.add_argument("--epochs", type=int, default=None, help="training epochs per run " + experiment_defaults("epochs"))
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="e.g. --seeds 0 1 2 " + experiment_defaults("seeds"))
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="network for " + ", ".join(ARCH_EXPERIMENTS) + "; the others fix theirs "
                        + experiment_defaults("arch", only=ARCH_EXPERIMENTS))
    p.add_argument("--batch-size", type=int, default=None,
                   help="training batch size " + experiment_defaults("batch_size"))
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate " + experiment_defaults("lr", otherwise="--lr-relu/--lr-tanh/--lr-grid"))
    p.add_argument("--recipe", choices=RECIPE_CHOICES, default=None,
                   help="training recipe; its values fill every setting not given "
                        + experiment_defaults("recipe"))
    p.add_argument("--init", choices=INITS, default=None,
                   help="weight initialization (default: the recipe's; relu-vs-tanh: --inits)")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning-rate schedule " + experiment_defaults("schedule"))
    p.add_argument("--resize", type=int, default=None,
                   help="shorter side S "
                        + experiment_defaults("resize", otherwise=by_data.format(36, SCALED_PAPER["resize"])))
    p.add_argument("--crop", type=int, default=None,
                   help="network input size "
                        + experiment_defaults("crop", otherwise=by_data.format(32, SCALED_PAPER["crop"])))
    p.add_argument("--fc-size", type=int, default=None,
                   help=f"fc6/fc7 units of {' and '.join(FC_SIZED_ARCHS)} (paper: 4096) "
                        f"(default: {SCALED_PAPER['fc_size']})")
    p.add_argument("--weight-decay", type=float, default=None,
                   help=f"weight decay (default: {train_default('weight_decay')}; relu-vs-tanh always uses 0, no "
                        "regularization)")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help=f"cap training batches per epoch (default: {train_default('steps_per_epoch')})")
    p.add_argument("--val-batches", type=int, default=None,
                   help=f"cap validation batches (default: {train_default('val_batches')})")
    p.add_argument("--train-eval-images", type=int, default=None,
                   help="training images re-evaluated in eval mode for the train/val gap (0: use the running error) "
                        + experiment_defaults("train_eval_images"))


def _add_experiment_flags(p) -> None:
    """The flags of one experiment (or two), and of the synthetic data."""
    g = p.add_argument_group("relu-vs-tanh")
    g.add_argument("--threshold", type=float, default=None,
                   help="training top-1 error to reach (paper: 0.25) " + experiment_defaults("threshold"))
    g.add_argument("--lr-relu", type=float, default=None,
                   help="fixed ReLU lr (giving either lr skips the search) (default: chosen from --lr-grid)")
    g.add_argument("--lr-tanh", type=float, default=None,
                   help="fixed tanh lr (giving either lr skips the search) (default: chosen from --lr-grid)")
    g.add_argument("--lr-grid", type=float, nargs="+", default=None,
                   help="choose each activation's lr from these on the first seed (as the paper tuned them apart) "
                        + experiment_defaults("lr_grid"))
    g.add_argument("--inits", choices=INITS, nargs="+", default=None,
                   help="run the whole experiment (lr search, then every seed) once per weight initialization; "
                        "paper: cuda-convnet's for this network (conv1 std 1e-4, the others 1e-2, zero biases), "
                        "kaiming: He's, the small recipe's " + experiment_defaults("inits", only=("relu-vs-tanh",)))
    g = p.add_argument_group("filters / neighbours")
    g.add_argument("--checkpoint", default=None,
                   help="use this trained network (default: a brief training run of the scaled paper network)")
    g.add_argument("--queries", type=int, default=None,
                   help="query images in the neighbours figure " + experiment_defaults("queries"))
    g.add_argument("--neighbours", type=int, default=None,
                   help="neighbours per query " + experiment_defaults("neighbours"))
    g = p.add_argument_group("synthetic data (made when --data does not exist)")
    g.add_argument("--synth-classes", type=int, default=SYNTH_DEFAULTS["classes"], help="classes")
    g.add_argument("--synth-train-per-class", type=int, default=SYNTH_DEFAULTS["train_per_class"],
                   help="training images per class")
    g.add_argument("--synth-val-per-class", type=int, default=SYNTH_DEFAULTS["val_per_class"],
                   help="validation images per class")


def config_from_args(args):
    """The ExperimentConfig of the parsed flags; flags not given stay None (the experiment's defaults)."""
    kw = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    kw.update({f: tuple(getattr(args, f)) for f in LIST_FIELDS if getattr(args, f) is not None})
    return ExperimentConfig(**kw)


def run(args) -> int:
    from ..experiments import EXPERIMENTS, run_experiment

    if args.name == "report":
        from ..experiments.report import build_report

        r = build_report(args.out or DEFAULT_ROOT, args.template, args.report, args.figures)
        print(f"{r['output']}: {len(r['included'])} experiment tables ({', '.join(r['included']) or 'none'})"
              + (f"; not run yet: {', '.join(r['missing'])}" if r["missing"] else "")
              + f"; {len(r['figures'])} figures copied to {args.figures}")
        return 0
    if args.name == "list":
        for name, e in EXPERIMENTS.items():
            print(f"{name:<13} {e.title}\n{'':<13} paper: {e.claim}\n")
        return 0
    printer = (lambda s: None) if args.json else print
    result = run_experiment(args.name, config_from_args(args), printer=printer)
    if args.json:
        print(json.dumps({"experiment": result.name, "rows": result.rows, "summary": result.summary,
                          "files": result.files}, default=str))
    return 0
