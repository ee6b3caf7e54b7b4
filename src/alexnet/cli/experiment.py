"""``alexnet experiment NAME``: the paper's experiments, one command each; ``alexnet experiment list``."""
from __future__ import annotations

import json

from ..experiments.common import DEFAULT_DATA


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
                    "  alexnet experiment relu-vs-tanh --out runs/exp/relu-vs-tanh --seeds 0 1 2\n"
                    "  alexnet experiment lrn --out runs/exp/lrn --epochs 10\n"
                    "  alexnet experiment relu-vs-tanh --data data/cifar10 --epochs 40 --lr-grid 0.03 0.01 0.003\n"
                    "  alexnet experiment filters --checkpoint runs/demo/best.pt --out runs/exp/filters\n"
                    "  alexnet experiment report    # EXPERIMENTS.md from runs/experiments/*/NAME.md")
    p.add_argument("name", choices=("list", "report", *EXPERIMENTS), metavar="NAME",
                   help="an experiment, 'list', or 'report' (EXPERIMENTS.md from the tables under --out, default "
                        "runs/experiments)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="dataset folder (ImageFolder/ILSVRC, CIFAR-10, ...); synthetic data is generated there if "
                        "it does not exist")
    p.add_argument("--out", default=None,
                   help="output folder (default: runs/experiments/NAME; filters and neighbours share .../figures)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="e.g. --seeds 0 1 2")
    p.add_argument("--arch", choices=("paper", "paper-1tower", "owt", "cifar"), default=None,
                   help="network for lrn/overlap-pool/dropout/augment (default: cifar for lrn, overlap-pool and "
                        "augment; paper, scaled, for dropout)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--init", choices=("paper", "caffe", "kaiming", "default"), default=None)
    p.add_argument("--schedule", choices=("plateau", "step", "cosine", "constant"), default=None)
    p.add_argument("--resize", type=int, default=None, help="shorter side S (default per experiment)")
    p.add_argument("--crop", type=int, default=None, help="network input size (default per experiment)")
    p.add_argument("--fc-size", type=int, default=None, help="fc6/fc7 units of the paper network (paper: 4096)")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap training batches per epoch")
    p.add_argument("--val-batches", type=int, default=None, help="cap validation batches")
    p.add_argument("--train-eval-images", type=int, default=None,
                   help="training images re-evaluated in eval mode for the train/val gap (0: use the running error)")
    g = p.add_argument_group("relu-vs-tanh")
    g.add_argument("--threshold", type=float, default=None, help="training top-1 error to reach (paper: 0.25)")
    g.add_argument("--lr-relu", type=float, default=None, help="fixed ReLU lr (giving either lr skips the search)")
    g.add_argument("--lr-tanh", type=float, default=None, help="fixed tanh lr (giving either lr skips the search)")
    g.add_argument("--lr-grid", type=float, nargs="+", default=None,
                   help="choose each activation's lr from these on the first seed (as the paper tuned them apart; "
                        "default 0.01 0.03)")
    g = p.add_argument_group("filters / neighbours")
    g.add_argument("--checkpoint", default=None, help="use this trained network instead of a brief training run")
    g.add_argument("--queries", type=int, default=None, help="query images in the neighbours figure")
    g.add_argument("--neighbours", type=int, default=None, help="neighbours per query")
    g = p.add_argument_group("synthetic data (made when --data does not exist)")
    g.add_argument("--synth-classes", type=int, default=None)
    g.add_argument("--synth-train-per-class", type=int, default=None)
    g.add_argument("--synth-val-per-class", type=int, default=None)
    g = p.add_argument_group("report")
    g.add_argument("--template", default="docs/experiments/EXPERIMENTS.template.md",
                   help="the report's prose, with <!-- experiment: NAME --> where each table goes")
    g.add_argument("--report", default="EXPERIMENTS.md", help="the report written")
    g.add_argument("--figures", default="docs/experiments", help="where the report's PNGs are copied")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto")
    g.add_argument("--workers", type=int, default=None)
    g.add_argument("--no-reuse", dest="reuse", action="store_false", help="retrain runs that already finished")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    g.add_argument("--json", action="store_true", help="print the result (rows, summary, files) as JSON at the end")
    p.set_defaults(func=run)


FIELDS = ("data", "out", "epochs", "arch", "batch_size", "lr", "init", "schedule", "resize", "crop", "fc_size",
          "weight_decay", "steps_per_epoch", "val_batches", "train_eval_images", "threshold", "lr_relu", "lr_tanh",
          "checkpoint", "queries", "neighbours", "synth_classes", "synth_train_per_class", "synth_val_per_class",
          "device", "workers", "reuse", "progress")


def config_from_args(args):
    from ..experiments import ExperimentConfig

    kw = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    if args.seeds is not None:
        kw["seeds"] = tuple(args.seeds)
    if args.lr_grid is not None:
        kw["lr_grid"] = tuple(args.lr_grid)
    return ExperimentConfig(**kw)


def run(args) -> int:
    from ..experiments import EXPERIMENTS, run_experiment

    if args.name == "report":
        from ..experiments.report import build_report

        r = build_report(args.out or "runs/experiments", args.template, args.report, args.figures)
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
