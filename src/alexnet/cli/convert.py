"""``alexnet convert {torchvision,caffe}`` and ``alexnet export``: weights in and out (``alexnet.interop``)."""
from __future__ import annotations

import json

from ..choices import EXPORT_FORMATS
from ..utils import check_output
from .sources import add_model_source, model_source


def register(sub) -> None:
    from . import HelpFormatter

    c = sub.add_parser(
        "convert", formatter_class=HelpFormatter, help="import torchvision or Caffe AlexNet weights",
        description="Convert pretrained AlexNet weights into an alexnet checkpoint (.pt) or .safetensors that every "
                    "verb (eval, predict, features, export) uses, with the matching preprocessing and the 1000 "
                    "ImageNet class names.\n\n"
                    "examples:\n"
                    "  alexnet convert torchvision alexnet-owt-7be5be79.pth -o owt.pt\n"
                    "  alexnet convert caffe bvlc_alexnet.caffemodel -o caffe_alexnet.safetensors "
                    "--mean ilsvrc_2012_mean.npy")
    csub = c.add_subparsers(dest="source", metavar="SOURCE")
    csub.required = True

    tv = csub.add_parser(
        "torchvision", formatter_class=HelpFormatter, help="torchvision's alexnet-owt-*.pth -> arch owt",
        description="torchvision's AlexNet state_dict (alexnet-owt-7be5be79.pth) -> our `owt` network, same logits "
                    "as torchvision's model. Preprocessing recorded: RGB, resize 256, centre crop 224, ImageNet "
                    "mean/std.\n\nexample:\n  alexnet convert torchvision alexnet-owt-7be5be79.pth -o owt.pt")
    tv.add_argument("weights", help="torchvision state_dict file (.pth)")
    tv.add_argument("-o", "--output", required=True, help="output .pt (alexnet checkpoint) or .safetensors")
    tv.add_argument("--classes", help="class names file, one per line (default: ImageNet's 1000 for 1000 outputs)")
    tv.add_argument("--no-check-hash", action="store_true",
                    help="convert even if the file's sha256 does not match the hash in its torchvision file name")
    tv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (default: refuse)")
    tv.add_argument("--json", action="store_true", help="print a JSON summary")
    tv.set_defaults(func=run_convert_torchvision)

    cf = csub.add_parser(
        "caffe", formatter_class=HelpFormatter, help="Caffe's bvlc_alexnet.caffemodel -> arch paper",
        description="Caffe's bvlc_alexnet.caffemodel -> our two-tower `paper` network with Caffe's LRN "
                    "(alpha/n, k=1) and 227x227 crops. The network keeps Caffe's BGR input: the checkpoint records "
                    "channel_order BGR and the BGR mean, and the other verbs flip RGB images for it (--rgb instead "
                    "flips conv1 once and records an RGB network).\n\n"
                    "example:\n  alexnet convert caffe bvlc_alexnet.caffemodel -o caffe_alexnet.pt "
                    "--mean ilsvrc_2012_mean.npy")
    cf.add_argument("caffemodel", help="binary .caffemodel (NetParameter; new or V1 layer format)")
    cf.add_argument("-o", "--output", required=True, help="output .pt (alexnet checkpoint) or .safetensors")
    cf.add_argument("--mean", default=None,
                    help="Caffe's mean image (.npy such as ilsvrc_2012_mean.npy, or .binaryproto such as "
                         "imagenet_mean.binaryproto; 256x256), kept as is and cropped with each input crop as Caffe "
                         "does, or B,G,R values; default Caffe's ILSVRC-2012 mean 104,117,123 (BGR)")
    cf.add_argument("--rgb", action="store_true", help="reverse conv1's input channels: an RGB network")
    cf.add_argument("--classes", help="class names file, one per line, e.g. Caffe's synset_words.txt "
                                      "(default: ImageNet's 1000 for 1000 outputs)")
    cf.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (default: refuse)")
    cf.add_argument("--json", action="store_true", help="print a JSON summary")
    cf.set_defaults(func=run_convert_caffe)

    e = sub.add_parser(
        "export", formatter_class=HelpFormatter, help="export a checkpoint to ONNX, TorchScript or safetensors",
        description="Export a network for other runtimes. CHECKPOINT: an alexnet .pt checkpoint or run folder, a "
                    ".safetensors file, or a torchvision .pth. ONNX: input `input` (N x C x S x S, preprocessed as "
                    "the checkpoint says), output `logits`, dynamic batch; config, classes and preprocessing in "
                    "the metadata property `alexnet` (JSON). TorchScript: traced; metadata in the extra file "
                    "alexnet.json. safetensors: weights, metadata in the header.\n\n"
                    "examples:\n  alexnet export runs/demo/best.pt --format onnx -o alexnet.onnx --check\n"
                    "  alexnet export owt.pt --format safetensors -o owt.safetensors\n"
                    "  alexnet export --weights torchvision -o alexnet.onnx --check")
    add_model_source(e, positional=True, checkpoint_help="checkpoint file, run folder, .safetensors or torchvision "
                                                         ".pth")
    e.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, default=None,
                   help="output format (default: from OUT's extension: .onnx, .ts/.torchscript, .safetensors)")
    e.add_argument("-o", "--output", required=True, help="output file")
    e.add_argument("--opset", type=int, default=None,
                   help="ONNX opset, within what the installed torch.onnx writes (default: the exporter's)")
    e.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (default: refuse)")
    e.add_argument("--check", action="store_true",
                   help="run the export (onnxruntime / torch.jit.load / reload) and compare logits with the checkpoint")
    e.add_argument("--json", action="store_true", help="print a JSON summary")
    e.set_defaults(func=run_export)


def _print_converted(path, args) -> int:
    from ..interop import describe_weights, load_model

    summary = {"output": str(path), **describe_weights(load_model(path).checkpoint)}
    if args.json:
        print(json.dumps(summary))
        return 0
    p = summary["preprocessing"]
    towers = f", {summary['towers']} towers" if summary["arch"] != "owt" else ""
    lrn = f", LRN {summary['lrn_convention']} k={summary['lrn_k']:g}" if summary["lrn"] else ""
    print(f"wrote {path}: arch {summary['arch']}{towers}{lrn}, {summary['num_classes']} classes, "
          f"input {summary['input_size']}x{summary['input_size']}")
    mean = ", ".join(f"{m:.2f}" for m in p["mean"])
    std = ", ".join(f"{s:.2f}" for s in p["std"])
    image = p.get("mean_image")
    what = f"mean image {'x'.join(map(str, image['shape']))} (per channel {mean})" if image else f"mean ({mean})"
    print(f"preprocessing: {p['channel_order']}, resize {p['resize']}, crop {p['crop']}, {what}, "
          f"std ({std}) in 0-255 units")
    return 0


def run_convert_torchvision(args) -> int:
    from ..interop import convert_torchvision, read_class_names

    classes = read_class_names(args.classes) if args.classes else None
    out = convert_torchvision(args.weights, args.output, classes=classes, check_hash=not args.no_check_hash,
                              overwrite=args.overwrite)
    return _print_converted(out, args)


def run_convert_caffe(args) -> int:
    from ..interop import convert_caffe, read_class_names

    classes = read_class_names(args.classes) if args.classes else None
    out = convert_caffe(args.caffemodel, args.output, mean=args.mean, rgb=args.rgb, classes=classes,
                        overwrite=args.overwrite)
    return _print_converted(out, args)


def run_export(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..interop import check_export, export_model, format_from_suffix

    fmt = args.fmt or format_from_suffix(Path(args.output))
    if fmt is None:
        raise ConfigError(f"--format not given and {args.output!r} has no known extension "
                          "(.onnx, .ts, .torchscript, .safetensors); pass --format")
    check_output(args.output, args.overwrite)   # before a download or a load
    source = model_source(args, progress=not args.json)
    out = export_model(source, fmt, args.output, opset=args.opset, overwrite=args.overwrite)
    summary = {"output": str(out), "format": fmt, "bytes": out.stat().st_size}
    if args.check:
        summary["max_abs_diff"] = check_export(out, source, fmt)
    if args.json:
        print(json.dumps(summary))
        return 0
    check = f"; max |logit difference| vs the checkpoint: {summary['max_abs_diff']:.2e}" if args.check else ""
    print(f"wrote {out} ({fmt}, {summary['bytes'] / 2**20:.1f} MiB){check}")
    return 0
