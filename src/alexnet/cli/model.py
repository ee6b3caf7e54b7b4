"""``alexnet model ARCH``: the layer table of a network (shapes and parameter counts)."""
from __future__ import annotations

import json


def add_model_switches(p) -> None:
    """The model switches shared by every verb that builds a network (train, model, bench, ...)."""
    g = p.add_argument_group("model switches (each paper technique can be ablated)")
    g.add_argument("--activation", choices=("relu", "tanh"), default=None, help="section 3.1 (default: relu)")
    g.add_argument("--lrn", dest="lrn", action="store_true", default=None, help="local response normalization on")
    g.add_argument("--no-lrn", dest="lrn", action="store_false", help="LRN off (section 3.3 ablation)")
    g.add_argument("--lrn-convention", choices=("paper", "caffe"), default=None,
                   help="paper: k + alpha*sum; caffe: k + alpha/n*sum (default: paper)")
    g.add_argument("--overlap-pool", dest="overlap_pool", action="store_true", default=None,
                   help="3x3 stride-2 pooling (default)")
    g.add_argument("--no-overlap-pool", dest="overlap_pool", action="store_false",
                   help="2x2 stride-2 pooling (section 3.4 ablation)")
    g.add_argument("--dropout", type=float, default=None, help="dropout on fc6/fc7 outputs (default 0.5)")
    g.add_argument("--towers", type=int, choices=(1, 2), default=None, help="section 3.2 (paper default: 2)")
    g.add_argument("--init", choices=("paper", "caffe", "kaiming", "default"), default=None,
                   help="weight initialisation (default: paper; owt: default)")
    g.add_argument("--input-size", type=int, default=None,
                   help="crop size fed to the network (paper: 224; 227 = Caffe layout)")
    g.add_argument("--channels", type=lambda s: tuple(int(c) for c in s.split(",")), default=None,
                   help="kernels in conv1..conv5, e.g. 48,128,192,192,256")
    g.add_argument("--fc-size", type=int, default=None, help="units in fc6 and fc7 (paper: 4096)")


def model_switches(args) -> dict:
    """The switches given on the command line (None = the architecture's default)."""
    keys = ("activation", "lrn", "lrn_convention", "overlap_pool", "dropout", "towers", "init",
            "input_size", "channels", "fc_size")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "model", formatter_class=HelpFormatter, help="print a network's layer table and parameter count",
        description="Print the layers of a network with output shapes and parameter counts.\n\n"
                    "example:\n  alexnet model paper\n  alexnet model paper --towers 1 --no-lrn --json")
    p.add_argument("arch", choices=("paper", "paper-1tower", "owt", "cifar"), help="architecture")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: 1000; cifar: 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_switches(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..model import build_model, count_parameters, describe

    switches = model_switches(args)
    if args.num_classes is not None:
        switches["num_classes"] = args.num_classes
    model = build_model(args.arch, **switches)
    rows = describe(model)
    total = count_parameters(model)
    if args.json:
        print(json.dumps({"arch": args.arch, "config": model.config.to_dict(),
                          "layers": [{**r, "output": list(r["output"])} for r in rows], "parameters": total}))
        return 0
    print(f"{args.arch}: {model.config.to_dict()}")
    print(f"{'layer':<8} {'output':>16} {'parameters':>14}")
    for r in rows:
        print(f"{r['layer']:<8} {' x '.join(map(str, r['output'])):>16} {r['parameters']:>14,}")
    print(f"{'total':<8} {'':>16} {total:>14,}")
    return 0
