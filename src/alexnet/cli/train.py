"""``alexnet train`` and ``alexnet eval``."""
from __future__ import annotations

import json

from .. import choices
from .model import add_model_switches, model_switches
from .sources import add_model_source, model_source


def add_runtime_flags(p) -> None:
    """--device, --precision, --workers for the verbs that run a network but do not train (eval)."""
    from ..config import TrainConfig
    from .fields import add_config_flags

    skip = tuple(f for f in TrainConfig.__dataclass_fields__ if f not in ("device", "precision", "workers"))
    add_config_flags(p, TrainConfig, skip=skip)


def register(sub) -> None:
    from ..config import TrainConfig
    from ..recipes import recipes_help
    from . import HelpFormatter
    from .fields import add_config_flags

    p = sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train a network (a recipe chosen from the data, or named)",
        description="Train with a recipe: the paper's (section 5: SGD batch 128, momentum 0.9, weight decay 0.0005, "
                    "lr 0.01 divided by 10 when the validation error stops improving, at most 3 times) on "
                    "ImageNet-scale data, the small-data recipe below 100,000 training images; the first output "
                    "line says which was taken and why. Every flag overrides its recipe's value. Random crops, "
                    "flips and PCA lighting; validation on centre crops every epoch.\n\n"
                    + recipes_help() + "\n\n"
                    "The run folder gets config.json, metrics.csv, train.log, tb/ (TensorBoard), last.pt, best.pt "
                    "and curves.png.\n\n"
                    "examples:\n"
                    "  alexnet data synth data/synth\n"
                    "  alexnet train --data data/synth --arch paper --epochs 10 --resize 144 --crop 128 --out runs/a\n"
                    "  alexnet train --data data/synth --arch paper --epochs 20 --out runs/a --resume runs/a\n"
                    "  alexnet train --data /data/imagenet --arch paper --epochs 90 --out runs/imagenet\n"
                    "  alexnet train --data data/synth --recipe paper --epochs 10 --out runs/p   # section 5 as is")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run exactly (folder or last.pt)")
    p.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier run: delete its checkpoints, metrics and logs and start afresh")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    add_config_flags(p, TrainConfig)
    add_model_switches(p)
    p.set_defaults(func=run_train)

    e = sub.add_parser(
        "eval", formatter_class=HelpFormatter, help="top-1/top-5 error of a checkpoint (1 or 10 crops)",
        description="Evaluate a checkpoint on a dataset split: top-1 and top-5 error over the whole split, centre "
                    "crop or the paper's 10-crop softmax average.\n\n"
                    "--json prints one object: top1_error, top5_error (fractions), top1_accuracy, top5_accuracy, "
                    "loss, n, crops, per_class_accuracy {class: accuracy}, checkpoint, data, split, arch.\n\n"
                    "examples:\n  alexnet eval --checkpoint runs/demo/best.pt --data data/synth --crops 10\n"
                    "  alexnet eval --weights torchvision --data /data/imagenet --crops 1")
    add_model_source(e)
    e.add_argument("--data", required=True)
    e.add_argument("--dataset", dest="dataset_kind", default="auto", choices=choices.DATASET_KINDS)
    e.add_argument("--split", default="val", choices=choices.SPLITS)
    e.add_argument("--crops", type=int, default=1, choices=choices.EVAL_CROPS)
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--max-batches", type=int, default=None, help="evaluate only the first N batches")
    e.add_argument("--strict", action="store_true", help="a bad image is an error, not skipped")
    e.add_argument("--json", action="store_true")
    add_runtime_flags(e)
    e.set_defaults(func=run_eval)


def config_from_args(args):
    """TrainConfig from parsed ``alexnet train`` arguments (its fields, plus the model switches)."""
    from ..config import TrainConfig
    from .fields import config_kwargs

    kw = config_kwargs(args, TrainConfig)
    switches = model_switches(args)
    if "input_size" in switches:
        if args.crop is not None and args.crop != switches["input_size"]:
            from ..errors import ConfigError
            raise ConfigError("--input-size and --crop differ; for training the crop is the network input")
        kw["crop"] = switches.pop("input_size")
    kw["model"] = switches
    return TrainConfig(**kw)


def run_train(args) -> int:
    from ..distributed import train_entry

    cfg = config_from_args(args)
    if args.json:
        # stdout carries only the JSON summary; the per-epoch lines go to stderr for a person watching.
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):
            summary = train_entry(cfg, resume=args.resume, overwrite=args.overwrite)
    else:
        summary = train_entry(cfg, resume=args.resume, overwrite=args.overwrite)
    if summary is None:
        return 0
    if args.json:
        print(json.dumps(summary))
    else:
        f = summary["final"]
        line = f"done: {summary['epochs']} epochs in {summary['wall_seconds']:.0f} s"
        if f.get("val_top1_error") is not None:
            line += f", val top-1 error {100 * f['val_top1_error']:.1f}%, top-5 {100 * f['val_top5_error']:.1f}%"
        print(line + f"; run folder {summary['run_dir']}")
    return 0


def run_eval(args) -> int:
    from ..evaluate import evaluate_checkpoint

    r = evaluate_checkpoint(model_source(args, progress=not args.json), args.data, split=args.split, crops=args.crops,
                            batch_size=args.batch_size, device=args.device, precision=args.precision,
                            workers=args.workers, dataset_kind=args.dataset_kind, strict=args.strict,
                            progress=not args.json, max_batches=args.max_batches)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['arch']} on {r['data']} ({r['split']}, {r['n']} images, {r['crops']}-crop): "
              f"top-1 error {100 * r['top1_error']:.2f}%  top-5 error {100 * r['top5_error']:.2f}%  "
              f"(accuracy {100 * r['top1_accuracy']:.2f}% / {100 * r['top5_accuracy']:.2f}%)")
        pub = r.get("publisher_accuracy")
        if pub:
            print(f"measured top-1 / top-5 accuracy {100 * r['top1_accuracy']:.2f}% / {100 * r['top5_accuracy']:.2f}% "
                  f"({r['crops']}-crop); published by {pub.get('weights') or 'the publisher'}: {pub['top1']:.2f}% / "
                  f"{pub['top5']:.2f}% ({pub.get('crops', 1)}-crop, {pub.get('split', '')})")
    return 0
