"""``alexnet data synth|pack|info|stats``: make, pack and inspect datasets."""
from __future__ import annotations

import json

from ..choices import DATASET_KINDS


def register(sub) -> None:
    from . import HelpFormatter

    p = sub.add_parser(
        "data", formatter_class=HelpFormatter, help="make, pack and inspect datasets",
        description="Datasets: the embedded synthetic set, packing for fast loading, and inspection.\n\n"
                    "examples:\n"
                    "  alexnet data synth data/synth\n"
                    "  alexnet data pack data/synth data/synth-packed --size 144\n"
                    "  alexnet data info /data/imagenet\n"
                    "  alexnet data stats data/synth --size 144 --json")
    ds = p.add_subparsers(dest="what", metavar="WHAT", required=True)

    s = ds.add_parser(
        "synth", formatter_class=HelpFormatter, help="generate the synthetic shapes dataset (ImageFolder of JPEGs)",
        description="Write the embedded synthetic dataset: one large shape per image whose outline is the class "
                    "(circle, triangle, square, pentagon, hexagon, star, cross, ring, crescent, arrow, heart, "
                    "L-shape), with random colours, textures, position, rotation, equal area, clutter, noise and "
                    "JPEG compression.  Deterministic from --seed; a complete folder made with the same settings is "
                    "reused at once.\n\nexample:\n  alexnet data synth data/synth --classes 10 "
                    "--train-per-class 300 --val-per-class 50")
    s.add_argument("out", metavar="OUT_DIR")
    s.add_argument("--classes", type=int, default=10, help="number of shape classes (2-12)")
    s.add_argument("--train-per-class", type=int, default=300)
    s.add_argument("--val-per-class", type=int, default=50)
    s.add_argument("--size", type=int, default=256, help="image side in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    s.add_argument("--no-progress", dest="progress", action="store_false")
    s.set_defaults(func=run_synth)

    k = ds.add_parser(
        "pack", formatter_class=HelpFormatter, help="decode a dataset once into fast pre-resized arrays",
        description="Decode every image of SRC once (shorter side S, centre S x S) into uint8 arrays read through "
                    "a memmap, plus labels and an index.  Bad images are skipped and listed in the index "
                    "(--strict: an error).  Size on disk: images x 3 x S x S bytes.\n\n"
                    "example:\n  alexnet data pack data/synth data/synth-packed --size 144\n"
                    "  alexnet train --data data/synth-packed --resize 144 --crop 128 --out runs/p")
    k.add_argument("src", metavar="SRC")
    k.add_argument("out", metavar="OUT")
    k.add_argument("--size", type=int, default=None, help="S (default 256 for image folders, native for "
                                                          "CIFAR/MNIST)")
    k.add_argument("--strict", action="store_true", help="a bad image is an error, not skipped")
    k.add_argument("--dataset", dest="kind", default="auto", choices=DATASET_KINDS)
    k.add_argument("--workers", type=int, default=None, help="decoding processes (default: per machine)")
    k.add_argument("--no-progress", dest="progress", action="store_false")
    k.set_defaults(func=run_pack)

    i = ds.add_parser(
        "info", formatter_class=HelpFormatter, help="what a dataset folder holds: kind, splits, classes, bad files",
        description="Open each split of DIR as training would and report its kind, image and class counts and "
                    "the bad files that would be skipped.\n\nexample:\n  alexnet data info data/synth --json")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--dataset", dest="kind", default="auto", choices=DATASET_KINDS)
    i.add_argument("--size", type=int, default=None, help="S used for checks (default per dataset)")
    i.add_argument("--strict", action="store_true", help="fail on the first bad file")
    i.add_argument("--download", action="store_true",
                   help="fetch CIFAR-10 / (Fashion-)MNIST into DIR when missing (needs --dataset)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=run_info)

    t = ds.add_parser(
        "stats", formatter_class=HelpFormatter, help="per-channel mean/std and RGB PCA of the training set",
        description="Compute (or read from the cache) the training split's per-channel mean and std and the "
                    "eigen-decomposition of its RGB covariance (0-255 units) used by the PCA colour "
                    "augmentation, from a seeded sample of images at S.\n\n"
                    "example:\n  alexnet data stats data/synth --size 144")
    t.add_argument("dir", metavar="DIR")
    t.add_argument("--dataset", dest="kind", default="auto", choices=DATASET_KINDS)
    t.add_argument("--size", type=int, default=None, help="S (default per dataset)")
    t.add_argument("--max-images", type=int, default=2000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--cache-dir", default=None, help="where to cache when DIR is read-only")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=run_stats)


def run_synth(args) -> int:
    import time

    from ..data import synthetic

    t0 = time.perf_counter()
    out = synthetic.generate(args.out, classes=args.classes, train_per_class=args.train_per_class,
                             val_per_class=args.val_per_class, size=args.size, seed=args.seed,
                             progress=args.progress, workers=args.workers)
    n = args.classes * (args.train_per_class + args.val_per_class)
    print(f"{out}: {args.classes} classes, {args.classes * args.train_per_class} train + "
          f"{args.classes * args.val_per_class} val images of {args.size} px ({n} JPEGs) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def run_pack(args) -> int:
    import time

    from ..data.formats.packed import read_pack_meta
    from ..data.pack import pack_folder
    from ..data.validate import printable

    t0 = time.perf_counter()
    out = pack_folder(args.src, args.out, size=args.size, strict=args.strict, progress=args.progress,
                      kind=args.kind, workers=args.workers)
    meta = read_pack_meta(out)
    parts = []
    for split, e in meta["splits"].items():
        bad = len(e.get("bad_files", []))
        parts.append(f"{split} {e['count']} images" + (f" ({bad} bad skipped)" if bad else ""))
    print(f"{printable(out)}: {', '.join(parts)} at {meta['size']} px, {len(meta['classes'])} classes, "
          f"in {time.perf_counter() - t0:.1f} s")
    for split, e in meta["splits"].items():
        for path, reason in e.get("bad_files", [])[:20]:
            print(f"  skipped ({split}): {printable(path)}: {reason}")
    return 0


def run_info(args) -> int:
    from ..data import available_splits, open_dataset
    from ..data.validate import printable
    from ..errors import DataError

    if args.download:
        open_dataset(args.dir, "train", download=True, kind=args.kind)
    splits = available_splits(args.dir, args.kind)
    if not splits:
        raise DataError(f"{args.dir}: no 'train' or 'val' split found")
    report = {}
    for split in splits:
        ds = open_dataset(args.dir, split, image_size=args.size, strict=args.strict, kind=args.kind)
        report[split] = ds.describe()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for split, d in report.items():
        print(f"{split}: {d['kind']} at {printable(d['root'])}: {d['images']} images, {d['classes']} classes, "
              f"{d['channels']} channel(s), S = {d['image_size']}, {len(d['bad_files'])} bad file(s)")
        names = d["class_names"]
        shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        print(f"  classes: {shown}")
        counts = d["per_class"]
        if counts:
            print(f"  images per class: min {min(counts)}, max {max(counts)}")
        for path, reason in d["bad_files"][:20]:
            print(f"  bad: {printable(path)}: {reason}")
        if len(d["bad_files"]) > 20:
            print(f"  ... and {len(d['bad_files']) - 20} more (--json lists all)")
    return 0


def run_stats(args) -> int:
    from ..data import dataset_stats, open_dataset

    ds = open_dataset(args.dir, "train", image_size=args.size, kind=args.kind)
    st = dataset_stats(ds, max_images=args.max_images, cache_dir=args.cache_dir, seed=args.seed)
    if args.json:
        print(json.dumps(st.to_dict(), indent=1))
        return 0
    fmt = lambda v: "(" + ", ".join(f"{x:.2f}" for x in v) + ")"  # noqa: E731
    print(f"{ds.root} train at S = {ds.image_size} ({st.images} images sampled)")
    print(f"  mean {fmt(st.mean)}   std {fmt(st.std)}   (0-255 units)")
    print(f"  PCA eigenvalues {fmt(st.eigval)}   (sqrt: {fmt([v ** 0.5 for v in st.eigval])})")
    for r, row in enumerate(st.eigvec):
        print(f"  eigvec row {'RGB'[r] if len(st.eigvec) == 3 else r}: {fmt(row)}")
    return 0
