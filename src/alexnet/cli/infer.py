"""``alexnet predict`` and ``alexnet features``."""
from __future__ import annotations

import json

from ..choices import EVAL_CROPS, FEATURE_POOLS
from .sources import add_model_source, model_source


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "predict", formatter_class=HelpFormatter, help="classify your own images with a checkpoint",
        description="Top-k classes and probabilities for each image (files or folders).\n\n"
                    "--json prints a list: [{\"image\": path, \"predictions\": [{\"class\", \"index\", "
                    "\"probability\"}, ...]}, ...].\n\n"
                    "examples:\n  alexnet predict photo.jpg more_photos/ --checkpoint runs/demo/best.pt --topk 3\n"
                    "  alexnet predict photo.jpg --weights torchvision")
    p.add_argument("images", nargs="+", help="image files or folders")
    add_model_source(p)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--crops", type=int, default=1, choices=EVAL_CROPS, help="10: the paper's 10-patch average")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_predict)

    f = sub.add_parser(
        "features", formatter_class=HelpFormatter, help="layer activations for images, saved as .npz",
        description="Activations of one or more layers for a folder (or list) of images, batched, in one pass.\n"
                    "conv1..conv5, fc6, fc7: after the ReLU (Caffe's blobs); fc8: logits; any other module name "
                    "(pool5, norm1, ...) its output. The .npz holds one array per layer, `paths` and `layers`.\n\n"
                    "example:\n  alexnet features images/ --checkpoint runs/demo/best.pt --layer conv5 fc7 "
                    "--pool avg -o feats.npz")
    f.add_argument("inputs", nargs="+", help="image files or folders")
    add_model_source(f)
    f.add_argument("--layer", nargs="+", action="extend", required=True, dest="layers",
                   help="layer name(s); repeatable: --layer conv1 --layer fc7")
    f.add_argument("--pool", default="none", choices=FEATURE_POOLS, help="avg: spatial mean of conv maps")
    f.add_argument("-o", "--output", required=True, help="output .npz")
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed) instead of failing")
    f.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    f.add_argument("--device", default="auto")
    f.add_argument("--json", action="store_true", help="print a JSON summary")
    f.set_defaults(func=run_features)


def run_predict(args) -> int:
    from ..predict import predict

    results = predict(model_source(args), args.images, topk=args.topk, crops=args.crops, device=args.device)
    if args.json:
        print(json.dumps(results))
        return 0
    for r in results:
        print(r["image"])
        for pr in r["predictions"]:
            print(f"  {100 * pr['probability']:6.2f}%  {pr['class']}")
    return 0


def run_features(args) -> int:
    from ..features import check_feature_args, save_features
    from ..utils import check_output

    check_feature_args(args.pool, args.batch_size, args.layers)   # flags and the output before any download
    check_output(args.output, args.overwrite)
    s = save_features(model_source(args, progress=not args.json), args.inputs, args.layers, args.output, pool=args.pool,
                      batch_size=args.batch_size, device=args.device, progress=not args.json,
                      strict=not args.skip_bad, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(s))
    else:
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in s["layers"].items())
        print(f"wrote {s['output']}: {s['n']} images; {shapes}")
        for b in s["skipped"]:
            print(f"skipped {b['path']}: {b['reason']}")
    return 0
