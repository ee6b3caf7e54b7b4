"""``alexnet bench train|infer|data|lrn``: throughput against torchvision, measured in one process."""
from __future__ import annotations

import argparse
import json
import math

from ..choices import ARCHS, BENCH_MODES, LRN_BACKENDS, PRECISIONS
from .model import add_model_switches, add_on_off, model_switches

LRN_BACKEND_HELP = "how LocalResponseNorm computes (default: $ALEXNET_LRN_BACKEND, else auto)"


def _add_model_bench_args(p) -> None:
    """Options of ``bench train|infer``; their defaults are ``alexnet.bench.BenchConfig``'s fields."""
    from dataclasses import fields

    from ..bench_config import BenchConfig

    default = {f.name: f.default for f in fields(BenchConfig)}
    p.add_argument("--arch", default=default["arch"], choices=ARCHS, help="architecture")
    p.add_argument("--batch", "--batch-size", dest="batch_size", metavar="BATCH", type=int,
                   default=default["batch_size"],
                   help="images per step")
    p.add_argument("--steps", type=int, default=default["steps"], help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=default["warmup"], help="untimed warm-up steps first")
    p.add_argument("--device", default=default["device"], help="auto, cpu, cuda, cuda:N")
    p.add_argument("--precision", default=default["precision"], choices=PRECISIONS,
                   help="ours; auto: the device's fastest correct setting (alexnet.runtime)")
    add_on_off(p, "channels-last", "channels_last", "ours in channels_last (default: per device, alexnet.runtime)",
               "ours contiguous (NCHW)")
    add_on_off(p, "compile", "compile", "torch.compile our whole network (default: off, see alexnet.runtime)",
               "no torch.compile")
    p.add_argument("--lrn-backend", choices=LRN_BACKENDS, default=argparse.SUPPRESS, help=LRN_BACKEND_HELP)
    p.add_argument("--num-classes", type=int, default=default["num_classes"], help="classes of both networks")
    p.add_argument("--no-reference", dest="reference", action="store_false", default=argparse.SUPPRESS,
                   help="skip torchvision's AlexNet (default: time it)")
    p.add_argument("--no-memory", dest="memory", action="store_false", default=argparse.SUPPRESS,
                   help="skip the peak-memory step (default: measure it)")
    p.add_argument("--no-peak", dest="peak", action="store_false", default=argparse.SUPPRESS,
                   help="skip the machine's peak-FLOP/s probe (default: measure it and each network's fraction)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_switches(p)


def register(sub) -> None:
    from ..bench_config import LRNBenchConfig
    from . import HelpFormatter

    p = sub.add_parser(
        "bench", formatter_class=HelpFormatter, help="images/s and peak memory against torchvision's AlexNet",
        description="Benchmarks, measured in one process against torchvision's AlexNet at PyTorch defaults "
                    "(fp32, contiguous, eager) and at the device's best settings (bf16 autocast + channels_last "
                    "on CPUs with native bf16, AMP on CUDA), same batch and input size, interleaved step by "
                    "step; medians of the timed steps after warm-up; then the machine's peak (a matmul and a "
                    "conv probe) and the fraction of it each network reaches.\n\n"
                    "examples:\n"
                    "  alexnet bench train --arch paper --batch 128\n"
                    "  alexnet bench infer --arch paper --batch 128 --json\n"
                    "  alexnet bench train --arch paper --no-lrn          # the LRN's cost\n"
                    "  alexnet bench lrn                                   # our LRN vs nn.LocalResponseNorm\n"
                    "  alexnet bench data /data/imagenet --images 1024    # loaders vs torchvision's")
    bsub = p.add_subparsers(dest="bench_kind", metavar="KIND")
    helptexts = {"train": "training steps: forward + loss + backward + SGD step",
                 "infer": "inference: forward passes in eval mode"}
    for kind in BENCH_MODES:
        helptext = helptexts[kind]
        q = bsub.add_parser(kind, formatter_class=HelpFormatter, help=helptext,
                            description=f"{helptext}; ours vs torchvision.models.alexnet.")
        _add_model_bench_args(q)
        q.set_defaults(func=run_model_bench, bench_mode=kind)

    d = bsub.add_parser("data", formatter_class=HelpFormatter, help="data loading: our loaders vs torchvision's",
                        description="Images/s of our direct and packed loaders and of torchvision's ImageFolder "
                                    "pipeline over the same images (224 crops of 256 images).")
    d.add_argument("data_dir", nargs="?", default=argparse.SUPPRESS,
                   help="image folder with a train split (default: a temporary synthetic set)")
    d.add_argument("--images", type=int, default=512, help="images read per loader")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=run_data_bench)

    lr = bsub.add_parser("lrn", formatter_class=HelpFormatter, help="our LRN vs torch.nn.LocalResponseNorm",
                         description="Forward + backward of the paper's LRN (ours, per tower) against "
                                     "torch.nn.LocalResponseNorm on conv1 (96x55x55) and conv2 (256x27x27) maps.")
    lrn_default = vars(LRNBenchConfig())
    lr.add_argument("--batch", "--batch-size", dest="batch", type=int, default=lrn_default["batch_size"],
                    help="maps per step")
    lr.add_argument("--steps", type=int, default=lrn_default["steps"], help="timed steps (the median is reported)")
    lr.add_argument("--warmup", type=int, default=lrn_default["warmup"], help="untimed warm-up steps first")
    lr.add_argument("--device", default=lrn_default["device"], help="auto, cpu, cuda, cuda:N")
    lr.add_argument("--lrn-backend", choices=LRN_BACKENDS, default=argparse.SUPPRESS, help=LRN_BACKEND_HELP)
    lr.add_argument("--forward-only", dest="backward", action="store_false", default=argparse.SUPPRESS,
                    help="time the forward pass only (default: forward + backward)")
    lr.add_argument("--json", action="store_true", help="print one JSON object")
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


def bench_config_from_args(args):
    """The ``BenchConfig`` of ``bench train|infer``: the options given, BenchConfig's defaults for the others."""
    from ..bench_config import BenchConfig

    given = {k: getattr(args, k) for k in ("arch", "batch_size", "steps", "warmup", "device", "precision",
                                           "channels_last", "compile", "reference", "num_classes", "memory", "peak")
             if hasattr(args, k)}
    switches = model_switches(args)
    if "input_size" in switches:
        given["input_size"] = switches.pop("input_size")
    return BenchConfig(mode=args.bench_mode, model_switches=switches, **given)


def run_model_bench(args) -> int:
    from ..bench import bench_model
    from ..layers import set_lrn_backend

    if getattr(args, "lrn_backend", None):
        set_lrn_backend(args.lrn_backend)
    res = bench_model(bench_config_from_args(args))
    if args.json:
        print(json.dumps(_json_safe(res)))
        return 0
    s = res["settings"]
    print(f"alexnet bench {res['mode']}: batch {res['batch_size']}, {res['input_size']} px, {s['device']} "
          f"({s['threads']} threads), median of {res['steps']} timed steps after {res['warmup']} warm-up")
    ours = (f"{res['arch']} ({s['precision']}, {'channels_last' if s['channels_last'] else 'contiguous'}, "
            f"{'compiled' if s['compile'] else 'eager'}, LRN {s['lrn_backend']})")
    peak = res.get("peak") or {}
    rows = [(ours, res["images_per_second"], res["seconds_per_step"], res["peak_memory_mb"], peak.get("fraction"))]
    if res["reference"]:
        rows.append(("torchvision alexnet (fp32, contiguous, eager)", res["reference_images_per_second"],
                     res["reference_seconds_per_step"], res["reference_peak_memory_mb"],
                     peak.get("reference_fraction")))
    best = res.get("best_reference")
    if best:
        b = best["settings"]
        rows.append((f"torchvision alexnet ({b['precision']}, {'channels_last' if b['channels_last'] else 'contiguous'}"
                     f", eager): its best here", best["images_per_second"], best["seconds_per_step"], None,
                     peak.get("best_reference_fraction")))
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'network':<{width}} {'images/s':>10} {'s/step':>8} {'peak MB':>9} {'of peak':>8}")
    for name, ips, sps, mem, frac in rows:
        print(f"{name:<{width}} {_fmt(ips):>10} {_fmt(sps, '.3f'):>8} {_fmt(mem, '.0f'):>9} "
              f"{_fmt(None if frac is None else 100 * frac, '.0f') + ('%' if frac is not None else ''):>8}")
    if res["reference"]:
        print(f"{'ratio (ours / torchvision defaults)':<{width}} {_fmt(res['ratio'], '.2f') + 'x':>10} {'':>8} "
              f"{_fmt(res['memory_ratio'], '.2f') + 'x':>9}")
    if best:
        print(f"{'ratio (ours / torchvision best)':<{width}} {_fmt(best['ratio'], '.2f') + 'x':>10}")
    if peak:
        print(f"machine peak ({peak['dtype']}{', channels_last' if peak['channels_last'] else ''}): "
              f"{peak['gflops']:.0f} GFLOP/s (matmul {peak['matmul_gflops']:.0f}, conv {peak['conv_gflops']:.0f}); "
              f"ours costs {peak['gflop_per_image']:.2f} GFLOP an image, a ceiling of "
              f"{peak['ceiling_images_per_second']:.0f} images/s")
    if s.get("cpu_allocator_tuned"):
        print("(CPU allocator tuned for the whole process: both networks run with it)")
    return 0


def run_data_bench(args) -> int:
    from ..data.bench import run_data_bench as data_bench

    data_dir = getattr(args, "data_dir", None)    # not given: a temporary synthetic set
    res = data_bench(data_dir, images=args.images)
    if args.json:
        print(json.dumps(_json_safe(res)))
        return 0
    ref = res.get("reference")
    print(f"alexnet bench data: {res.get('images', args.images)} images from {res.get('source', data_dir)}, "
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

    if getattr(args, "lrn_backend", None):
        set_lrn_backend(args.lrn_backend)
    res = bench_lrn(batch_size=args.batch, steps=args.steps, warmup=args.warmup, device=args.device,
                    backward=getattr(args, "backward", True))
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
