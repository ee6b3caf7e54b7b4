"""``alexnet demo``: the main job (what `make demo` runs)."""
from __future__ import annotations

import json

from ..choices import INITS, RECIPE_CHOICES


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "demo", formatter_class=HelpFormatter, help="the main job: synthetic data -> train -> eval -> pictures",
        description="Generate the embedded synthetic dataset (reused when present), train the paper's network with "
                    "the small-data recipe (scaled for a small CPU, stated in the output; --recipe paper for the "
                    "paper's), evaluate with 1 and 10 crops, and draw the curves, conv1 filters (Figure 3) and fc7 "
                    "neighbours (Figure 4).\n\n"
                    "example:\n  alexnet demo --data data/synth --out runs/demo")
    p.add_argument("--data", default="data/synth")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--recipe", default=None, choices=RECIPE_CHOICES,
                   help="training recipe (default: small, the from-scratch small-data recipe; paper: section 5; "
                        "auto: by the number of training images)")
    p.add_argument("--init", default=None, choices=INITS, help="weight initialisation (default: the recipe's)")
    p.add_argument("--train-per-class", type=int, default=None)
    p.add_argument("--val-per-class", type=int, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from ..demo import DemoConfig, run_demo

    cfg = DemoConfig(data=args.data, out=args.out)
    over = {k: getattr(args, k) for k in ("epochs", "batch_size", "recipe", "init", "train_per_class", "val_per_class",
                                          "steps_per_epoch", "seed", "device") if getattr(args, k) is not None}
    cfg = replace(cfg, **over)
    if args.json:
        # stdout carries only the JSON result; the narration goes to stderr for a person watching.
        import sys

        result = run_demo(cfg, printer=lambda line="": print(line, file=sys.stderr))
    else:
        result = run_demo(cfg, printer=print)
    if args.json:
        print(json.dumps(result))
    return 0
