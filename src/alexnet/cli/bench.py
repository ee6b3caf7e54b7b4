"""``alexnet bench train|infer|data|lrn``: throughput against torchvision, measured in one process."""
from __future__ import annotations

import json
import math

from .model import add_model_switches, model_switches

ARCH_CHOICES = ("paper", "paper-1tower", "owt", "cifar")


def _add_model_bench_args(p) -> None:
    p.add_argument("--arch", default="paper", choices=ARCH_CHOICES)
    p.add_argument("--batch", "--batch-size", dest="batch", type=int, default=128, help="images per step")
    p.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps first")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="ours; auto: the device's fastest correct setting (alexnet.runtime)")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="ours in channels_last (default: per device)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile our whole network (default: per device, see alexnet.runtime)")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--lrn-backend", choices=("auto", "eager", "compiled"), default=None,
                   help="how LocalResponseNorm computes (default: auto)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip torchvision's AlexNet")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory step")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_switches(p)


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "bench", formatter_class=HelpFormatter, help="images/s and peak memory against torchvision's AlexNet",
        description="Benchmarks, measured in one process against torchvision's AlexNet at PyTorch defaults "
                    "(fp32, contiguous, eager), same batch and input size, interleaved step by step; medians of "
                    "the timed steps after warm-up.\n\n"
                    "examples:\n"
                    "  alexnet bench train --arch paper --batch 128\n"
                    "  alexnet bench infer --arch paper --batch 128 --json\n"
                    "  alexnet bench train --arch paper --no-lrn          # the LRN's cost\n"
                    "  alexnet bench lrn                                   # our LRN vs nn.LocalResponseNorm\n"
                    "  alexnet bench data /data/imagenet --images 1024    # loaders vs torchvision's")
    bsub = p.add_subparsers(dest="bench_kind", metavar="KIND")
    for kind, helptext in (("train", "training steps: forward + loss + backward + SGD step"),
                           ("infer", "inference: forward passes in eval mode")):
        q = bsub.add_parser(kind, formatter_class=HelpFormatter, help=helptext,
                            description=f"{helptext}; ours vs torchvision.models.alexnet.")
        _add_model_bench_args(q)
        q.set_defaults(func=run_model_bench, bench_mode=kind)

    d = bsub.add_parser("data", formatter_class=HelpFormatter, help="data loading: our loaders vs torchvision's",
                        description="Images/s of our direct and packed loaders and of torchvision's ImageFolder "
                                    "pipeline over the same images (224 crops of 256 images).")
    d.add_argument("data_dir", nargs="?", default=None,
                   help="image folder with a train split (default: a temporary synthetic set)")
    d.add_argument("--images", type=int, default=512, help="images read per loader")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_data_bench)

    lr = bsub.add_parser("lrn", formatter_class=HelpFormatter, help="our LRN vs torch.nn.LocalResponseNorm",
                         description="Forward + backward of the paper's LRN (ours, per tower) against "
                                     "torch.nn.LocalResponseNorm on conv1 (96x55x55) and conv2 (256x27x27) maps.")
    lr.add_argument("--batch", "--batch-size", dest="batch", type=int, default=128)
    lr.add_argument("--steps", type=int, default=5)
    lr.add_argument("--warmup", type=int, default=1)
    lr.add_argument("--device", default="auto")
    lr.add_argument("--lrn-backend", choices=("auto", "eager", "compiled"), default=None)
    lr.add_argument("--forward-only", dest="backward", action="store_false")
    lr.add_argument("--json", action="store_true")
    lr.set_defaults(func=run_lrn_bench)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _json_safe(v):
    """NaN/inf (a measurement not taken, e.g. --no-memory) -> null: json.dumps would write NaN, which is not JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _fmt(v, spec=".1f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def run_model_bench(args) -> int:
    from ..bench import bench_model
    from ..layers import set_lrn_backend

    if args.lrn_backend:
        set_lrn_backend(args.lrn_backend)
    switches = model_switches(args)
    input_size = switches.pop("input_size", None) or 224
    res = bench_model(args.bench_mode, args.arch, batch_size=args.batch, input_size=input_size, steps=args.steps,
                      warmup=args.warmup, device=args.device, precision=args.precision,
                      channels_last=args.channels_last, compile=args.compile, reference=args.reference,
                      num_classes=args.num_classes, memory=args.memory, **switches)
    if args.json:
        print(json.dumps(_json_safe(res)))
        return 0
    s = res["settings"]
    print(f"alexnet bench {res['mode']}: batch {res['batch_size']}, {res['input_size']} px, {s['device']} "
          f"({s['threads']} threads), median of {res['steps']} timed steps after {res['warmup']} warm-up")
    ours = (f"{res['arch']} ({s['precision']}, {'channels_last' if s['channels_last'] else 'contiguous'}, "
            f"{'compiled' if s['compile'] else 'eager'}, LRN {s['lrn_backend']})")
    rows = [(ours, res["images_per_second"], res["seconds_per_step"], res["peak_memory_mb"])]
    if res["reference"]:
        rows.append(("torchvision alexnet (fp32, contiguous, eager)", res["reference_images_per_second"],
                     res["reference_seconds_per_step"], res["reference_peak_memory_mb"]))
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'network':<{width}} {'images/s':>10} {'s/step':>8} {'peak MB':>9}")
    for name, ips, sps, mem in rows:
        print(f"{name:<{width}} {_fmt(ips):>10} {_fmt(sps, '.3f'):>8} {_fmt(mem, '.0f'):>9}")
    if res["reference"]:
        print(f"{'ratio (ours / torchvision)':<{width}} {_fmt(res['ratio'], '.2f') + 'x':>10} {'':>8} "
              f"{_fmt(res['memory_ratio'], '.2f') + 'x':>9}")
    if s.get("cpu_allocator_tuned"):
        print("(CPU allocator tuned for the whole process: both networks run with it)")
    return 0


def run_data_bench(args) -> int:
    from ..data.bench import run_data_bench as data_bench

    res = data_bench(args.data_dir, images=args.images)
    if args.json:
        print(json.dumps(_json_safe(res)))
        return 0
    ref = res.get("reference")
    print(f"alexnet bench data: {res.get('images', args.images)} images from {res.get('source', args.data_dir)}, "
          f"batch {res.get('batch_size', '-')}, {res.get('workers', '-')} workers")
    print(f"{'loader':<12} {'images/s':>10} {'vs torchvision':>15}")
    for key in ("direct", "packed", "reference"):
        if key in res and res[key] is not None:
            ratio = res[key] / ref if ref else None
            print(f"{key:<12} {_fmt(res[key]):>10} {_fmt(ratio, '.2f') + 'x':>15}")
    return 0


def run_lrn_bench(args) -> int:
    from ..bench import bench_lrn
    from ..layers import set_lrn_backend

    if args.lrn_backend:
        set_lrn_backend(args.lrn_backend)
    res = bench_lrn(batch_size=args.batch, steps=args.steps, warmup=args.warmup, device=args.device,
                    backward=args.backward)
    if args.json:
        print(json.dumps(_json_safe(res)))
        return 0
    what = "forward + backward" if res["backward"] else "forward"
    print(f"alexnet bench lrn: {what}, batch {res['batch_size']}, {res['device']} ({res['threads']} threads), "
          f"LRN backend {res['lrn_backend']}, median of {res['steps']}")
    print(f"{'layer':<6} {'maps':>14} {'ours ms':>9} {'nn.LRN ms':>10} {'speed-up':>9}")
    for name, r in res["layers"].items():
        print(f"{name:<6} {'x'.join(map(str, r['shape'][1:])):>14} {_fmt(r['ms']):>9} {_fmt(r['reference_ms']):>10} "
              f"{_fmt(r['ratio'], '.2f') + 'x':>9}")
    return 0
