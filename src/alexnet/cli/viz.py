"""``alexnet viz curves|filters|neighbours``: the pictures on demand."""
from __future__ import annotations

import json

from .sources import add_model_source, model_source


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser("viz", formatter_class=HelpFormatter, help="training curves, conv1 filters, fc7 neighbours",
                       description="Pictures (PNG).\n\nexamples:\n  alexnet viz curves runs/demo\n"
                                   "  alexnet viz filters runs/demo/best.pt -o filters.png\n"
                                   "  alexnet viz neighbours --checkpoint runs/demo/best.pt --data data/synth "
                                   "-o neighbours.png")
    vs = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    c = vs.add_parser("curves", formatter_class=HelpFormatter, help="loss and error curves of a run",
                      description="Loss and top-1/top-5 error per epoch from RUN_DIR/metrics.csv.\n\n"
                                  "example:\n  alexnet viz curves runs/demo -o curves.png")
    c.add_argument("run_dir")
    c.add_argument("-o", "--output", default=None,
                   help="picture file, e.g. .png (default: RUN_DIR/curves.png, the run's own picture, redrawn)")
    c.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    c.set_defaults(func=run_curves)
    f = vs.add_parser("filters", formatter_class=HelpFormatter, help="conv1 kernels per tower (Figure 3)",
                      description="conv1's kernels as a grid per tower, with each tower's colour specificity "
                                  "(0: grey, 1: pure colour).\n\nexample:\n"
                                  "  alexnet viz filters runs/demo/best.pt -o filters.png")
    add_model_source(f, positional=True)
    f.add_argument("-o", "--output", required=True, help="picture file, e.g. .png")
    f.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=run_filters)
    n = vs.add_parser("neighbours", formatter_class=HelpFormatter, help="nearest training images in fc7 (Figure 4)",
                      description="Validation images and their nearest training images by Euclidean fc7 "
                                  "distance.\n\nexample:\n  alexnet viz neighbours --checkpoint runs/demo/best.pt "
                                  "--data data/synth -o neighbours.png")
    add_model_source(n)
    n.add_argument("--data", required=True)
    n.add_argument("--queries", type=int, default=8)
    n.add_argument("--k", type=int, default=6)
    n.add_argument("--max-db", type=int, default=2000, help="training images searched")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--device", default="auto")
    n.add_argument("-o", "--output", required=True, help="picture file, e.g. .png")
    n.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=run_neighbours)


def run_curves(args) -> int:
    from pathlib import Path

    from ..viz import check_figure_output, plot_curves, read_metrics

    out = args.output or str(Path(args.run_dir) / "curves.png")
    overwrite = args.overwrite or args.output is None   # the run's own curves.png: training redraws it too
    check_figure_output(out, overwrite)
    plot_curves(read_metrics(args.run_dir), out, title=Path(args.run_dir).name, overwrite=overwrite)
    print(f"wrote {out}")
    return 0


def run_filters(args) -> int:
    from ..interop import load_model
    from ..viz import check_figure_output, plot_filters, tower_colour_specificity

    check_figure_output(args.output, args.overwrite)
    source = model_source(args)
    model, _ = load_model(source)
    plot_filters(model, args.output, title=f"conv1 of {args.weights or args.checkpoint}", overwrite=args.overwrite)
    spec = tower_colour_specificity(model)
    if args.json:
        print(json.dumps({"output": args.output, "tower_colour_specificity": spec}))
    else:
        print(f"wrote {args.output}; colour specificity per tower: " + ", ".join(f"{s:.3f}" for s in spec))
    return 0


def run_neighbours(args) -> int:
    from ..data import open_dataset
    from ..interop import load_model
    from ..viz import check_figure_output, neighbours_figure

    check_figure_output(args.output, args.overwrite)
    source = model_source(args)
    model, ckpt = load_model(source)
    prep = ckpt.inference_preprocessing(source)
    train_set = open_dataset(args.data, "train", image_size=prep.get("resize"))
    val_set = open_dataset(args.data, "val", image_size=prep.get("resize"))
    r = neighbours_figure(model, prep, train_set, val_set, args.output, queries=args.queries, k=args.k,
                          max_db=args.max_db, seed=args.seed, device=args.device, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"wrote {r['figure']}: {r['queries']} queries x {r['k']} neighbours by {r['layer']}; "
              f"{100 * r['same_class_fraction']:.0f}% of neighbours share the query's class")
    return 0
