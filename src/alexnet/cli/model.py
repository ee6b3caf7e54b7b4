"""``alexnet model ARCH``: the layer table of a network (shapes and parameter counts)."""
from __future__ import annotations

import argparse
import json

from ..choices import ACTIVATIONS, ARCHS, INITS, LRN_CONVENTIONS, TOWERS

# The switches of ``alexnet.model.make_config`` that the command line sets.
MODEL_SWITCHES = ("activation", "lrn", "lrn_convention", "overlap_pool", "dropout", "towers", "init",
                  "input_size", "channels", "fc_size")


def add_on_off(group, name: str, dest: str, on_help: str, off_help: str) -> None:
    """``--NAME`` / ``--no-NAME`` for a boolean whose default someone else decides (the architecture, the device).

    Neither flag given: no attribute (argparse.SUPPRESS), so the library's default applies and --help shows the
    default the help text states rather than a misleading "(default: None)" / "(default: True)".
    """
    group.add_argument(f"--{name}", dest=dest, action="store_true", default=argparse.SUPPRESS, help=on_help)
    group.add_argument(f"--no-{name}", dest=dest, action="store_false", default=argparse.SUPPRESS, help=off_help)


def add_model_switches(p) -> None:
    """The model switches shared by every verb that builds a network (train, model, bench, ...).

    Each defaults to the architecture's own value (``alexnet.model``'s registry), so none is set unless given."""
    g = p.add_argument_group("model switches (each paper technique can be ablated; "
                             "not given: the architecture's default)")
    arch_default = dict(default=argparse.SUPPRESS)
    g.add_argument("--activation", choices=ACTIVATIONS, help="section 3.1 (default: relu)", **arch_default)
    add_on_off(g, "lrn", "lrn", "local response normalization on (default: on; owt: off)",
               "LRN off (section 3.3 ablation)")
    g.add_argument("--lrn-convention", choices=LRN_CONVENTIONS, **arch_default,
                   help="section 3.3's formula as read by: paper (its text: k=2 + alpha*sum, per tower), cuda-convnet "
                        "(its authors' code: k=2 + alpha/n*sum, per tower), caffe (bvlc_alexnet: k=1 + alpha/n*sum "
                        "across both towers) (default: paper)")
    add_on_off(g, "overlap-pool", "overlap_pool", "3x3 stride-2 pooling (default)",
               "2x2 stride-2 pooling (section 3.4 ablation)")
    g.add_argument("--dropout", type=float, help="dropout on fc6/fc7 outputs (default: 0.5; cifar: 0)",
                   **arch_default)
    g.add_argument("--towers", type=int, choices=TOWERS, help="section 3.2 (default: paper 2, others 1)",
                   **arch_default)
    g.add_argument("--init", choices=INITS, help="weight initialisation (default: paper; owt: default)",
                   **arch_default)
    g.add_argument("--input-size", type=int, **arch_default,
                   help="crop size fed to the network (default: 224, the paper's; cifar: 32; 227 = Caffe layout)")
    g.add_argument("--channels", type=lambda s: tuple(int(c) for c in s.split(",")), **arch_default,
                   help="kernels in conv1..conv5, e.g. 48,128,192,192,256 (default: paper 96,256,384,384,256)")
    g.add_argument("--fc-size", type=int, help="units in fc6 and fc7 (default: 4096)", **arch_default)


def model_switches(args) -> dict:
    """The switches given on the command line (those not given take the architecture's default)."""
    return {k: getattr(args, k) for k in MODEL_SWITCHES if getattr(args, k, None) is not None}


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "model", formatter_class=HelpFormatter, help="print a network's layer table and parameter count",
        description="Print the layers of a network with output shapes and parameter counts.\n\n"
                    "example:\n  alexnet model paper\n  alexnet model paper --towers 1 --no-lrn --json")
    p.add_argument("arch", choices=ARCHS, help="architecture")
    p.add_argument("--num-classes", type=int, default=argparse.SUPPRESS,
                   help="classes (default: 1000; cifar: 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_switches(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..model import build_model, count_parameters, describe

    switches = model_switches(args)
    if getattr(args, "num_classes", None) is not None:
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
