"""``alexnet train`` and ``alexnet eval``."""
from __future__ import annotations

import json

from .model import add_model_switches, model_switches


def add_runtime_flags(p) -> None:
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto: bf16 autocast on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16), else fp32")
    g.add_argument("--workers", type=int, default=None, help="data-loading worker processes (default: per machine)")


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train a network (the paper's recipe by default)",
        description="Train with the paper's recipe: SGD batch 128, momentum 0.9, weight decay 0.0005, lr 0.01 "
                    "divided by 10 when the validation error stops improving (at most 3 times); random crops, "
                    "flips and PCA lighting; validation on centre crops every epoch.\n\n"
                    "The run folder gets config.json, metrics.csv, train.log, tb/ (TensorBoard), last.pt, best.pt "
                    "and curves.png.\n\n"
                    "examples:\n"
                    "  alexnet data synth data/synth\n"
                    "  alexnet train --data data/synth --arch paper --epochs 10 --resize 144 --crop 128 --out runs/a\n"
                    "  alexnet train --data data/synth --arch paper --epochs 20 --out runs/a --resume runs/a\n"
                    "  alexnet train --data /data/imagenet --arch paper --epochs 90 --out runs/imagenet")
    p.add_argument("--data", required=True, help="dataset folder (ImageFolder/ILSVRC, CIFAR-10, MNIST, packed)")
    p.add_argument("--dataset", dest="dataset_kind", default="auto",
                   choices=("auto", "imagefolder", "ilsvrc", "cifar10", "mnist", "fashion-mnist", "packed"))
    p.add_argument("--arch", default="paper", choices=("paper", "paper-1tower", "owt", "cifar"))
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run exactly (folder or last.pt)")
    p.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier run: delete its checkpoints, metrics and logs and start afresh")
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0005)
    p.add_argument("--optimizer", default="paper", choices=("paper", "sgd"),
                   help="paper: section 5's update (lr inside the velocity); sgd: torch.optim.SGD")
    p.add_argument("--schedule", default="plateau", choices=("plateau", "step", "cosine", "constant"))
    p.add_argument("--patience", type=int, default=3, help="plateau: epochs without improvement before lr/10")
    p.add_argument("--max-reductions", type=int, default=3)
    p.add_argument("--step-size", type=int, default=30, help="step schedule: epochs between lr/10")
    p.add_argument("--resize", type=int, default=None, help="shorter side S (default 256; CIFAR/MNIST: native)")
    p.add_argument("--crop", type=int, default=None, help="crop = network input (default 224 for S=256)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no horizontal reflections")
    p.add_argument("--no-random-crop", dest="random_crop", action="store_false", help="centre crops in training")
    p.add_argument("--no-lighting", dest="lighting", action="store_false", help="no PCA colour augmentation")
    p.add_argument("--lighting-std", type=float, default=0.1)
    p.add_argument("--normalize", default="auto", choices=("auto", "paper", "standard"),
                   help="paper: subtract the training mean (0-255 units); standard: also divide by the std; "
                        "auto: paper for --init paper/caffe, standard for kaiming/default")
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs (0: never)")
    p.add_argument("--val-crops", type=int, default=1, choices=(1, 10))
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap training batches per epoch")
    p.add_argument("--val-batches", type=int, default=None, help="cap validation batches")
    p.add_argument("--save-every", type=int, default=0, help="also checkpoint every N steps (mid-epoch resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="bitwise-repeatable CPU runs")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--strict", dest="strict_data", action="store_true", help="a bad image is an error, not skipped")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--tower-devices", default=None, metavar="DEV0,DEV1",
                   help="the paper's two-GPU model parallelism (arch paper): tower 1 on DEV0, tower 2 on DEV1, "
                        "e.g. cuda:0,cuda:1; they exchange activations only into conv3 and fc6/fc7/fc8")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    add_runtime_flags(p)
    add_model_switches(p)
    p.set_defaults(func=run_train)

    e = sub.add_parser(
        "eval", formatter_class=HelpFormatter, help="top-1/top-5 error of a checkpoint (1 or 10 crops)",
        description="Evaluate a checkpoint on a dataset split: top-1 and top-5 error over the whole split, centre "
                    "crop or the paper's 10-crop softmax average.\n\n"
                    "--json prints one object: top1_error, top5_error (fractions), top1_accuracy, top5_accuracy, "
                    "loss, n, crops, per_class_accuracy {class: accuracy}, checkpoint, data, split, arch.\n\n"
                    "example:\n  alexnet eval --checkpoint runs/demo/best.pt --data data/synth --crops 10")
    e.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    e.add_argument("--data", required=True)
    e.add_argument("--dataset", dest="dataset_kind", default="auto",
                   choices=("auto", "imagefolder", "ilsvrc", "cifar10", "mnist", "fashion-mnist", "packed"))
    e.add_argument("--split", default="val", choices=("train", "val"))
    e.add_argument("--crops", type=int, default=1, choices=(1, 10))
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--max-batches", type=int, default=None, help="evaluate only the first N batches")
    e.add_argument("--strict", action="store_true", help="a bad image is an error, not skipped")
    e.add_argument("--json", action="store_true")
    add_runtime_flags(e)
    e.set_defaults(func=run_eval)


def config_from_args(args):
    from ..train import TrainConfig

    fields = ("data", "out", "arch", "dataset_kind", "epochs", "batch_size", "lr", "momentum", "weight_decay",
              "optimizer", "schedule", "patience", "max_reductions", "step_size", "resize", "crop", "flip",
              "random_crop", "lighting", "lighting_std", "normalize", "val_every", "val_crops", "seed",
              "deterministic", "device", "precision", "channels_last", "compile", "workers", "steps_per_epoch",
              "val_batches", "save_every", "strict_data", "progress", "tower_devices")
    kw = {f: getattr(args, f) for f in fields}
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

    r = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, crops=args.crops,
                            batch_size=args.batch_size, device=args.device, precision=args.precision,
                            workers=args.workers, dataset_kind=args.dataset_kind, strict=args.strict,
                            progress=not args.json, max_batches=args.max_batches)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['arch']} on {r['data']} ({r['split']}, {r['n']} images, {r['crops']}-crop): "
              f"top-1 error {100 * r['top1_error']:.2f}%  top-5 error {100 * r['top5_error']:.2f}%  "
              f"(accuracy {100 * r['top1_accuracy']:.2f}% / {100 * r['top5_accuracy']:.2f}%)")
    return 0
