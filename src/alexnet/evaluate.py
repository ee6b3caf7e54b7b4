"""Top-1/top-5 error over a whole split, centre crop or the paper's 10-crop (section 4.1)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .metrics import TopKMeter
from .progress import progress_bar
from .runtime import autocast, resolve_device, resolve_precision, to_layout


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset, prep: Mapping, *, crops: int = 1, batch_size: int = 128,
             device: str | torch.device = "auto", precision: str = "auto", workers: int | None = None,
             progress: bool = True, max_batches: int | None = None, dist=None) -> dict:
    """Evaluate ``model`` on ``dataset`` (an ``alexnet.data`` dataset of uint8 images).

    prep: the preprocessing a checkpoint records (``crop``, ``mean``, ``std``, optionally ``channel_order`` and the
    paper's ``mean_image``, cropped with each patch).
    crops=10 averages the softmax over the four corner and centre patches and their reflections, as the paper.
    dist (optional, ``alexnet.distributed.DistContext``): distributed evaluation, each rank sees a disjoint shard and
    the counts are summed across ranks (every sample is counted once).
    Returns top1_error, top5_error (fractions), accuracies, loss, n, crops, per_class_accuracy, and dropped: the
    images that failed to decode here, left out of n and the errors (never replaced by another image, which would
    count that one twice).
    """
    from .data import EvalTransform, make_loader
    from .data.base import DROPPED, dropping_bad

    if crops not in (1, 10):
        raise ConfigError(f"--crops must be 1 or 10; got {crops}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    prec = resolve_precision(dev, precision)
    was_training = model.training
    model.eval()
    channel_order = prep.get("channel_order", "RGB")
    transform = EvalTransform.from_prep(prep, ten_crop=crops == 10)   # the mean image too, if the record has one
    rank, world_size = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=workers, rank=rank, world_size=world_size,
                         drop_last=False)
    classes = list(getattr(dataset, "classes", []))
    meter = TopKMeter(len(classes) or None)
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    dropped = 0
    with dropping_bad(dataset):   # before the loader's workers start: they inherit the setting
        bar = progress_bar(loader, total=total, desc=f"eval ({crops}-crop)", unit="batch",
                           disable=not progress, leave=False)
        for i, (images, labels) in enumerate(bar):
            if max_batches is not None and i >= max_batches:
                break
            keep = labels != DROPPED
            if not bool(keep.all()):
                dropped += int((~keep).sum())
                images, labels = images[keep], labels[keep]
                if not len(labels):
                    continue
            labels = labels.to(dev, non_blocking=True)
            scores, loss = batch_scores(model, images.to(dev, non_blocking=True), labels, transform, crops, dev,
                                        prec, channel_order)
            meter.update(scores.cpu(), labels.cpu(), loss)
        bar.close()
    model.train(was_training)
    if world_size > 1:   # every rank dropped its own shard's images: sum them, like the counts
        dropped = int(dist.reduce(torch.tensor([dropped], dtype=torch.float64))[0])
    return {**_summary(meter, classes, crops, dist if world_size > 1 else None), "dropped": dropped}


def batch_scores(model, images, labels, transform, crops: int, dev, prec, channel_order: str = "RGB"):
    """(class scores, mean loss) of one batch of uint8 images: logits for one crop, the softmax averaged over the
    10 patches for ten (section 4.1)."""
    if channel_order == "BGR":   # Caffe-converted weights (alexnet.interop)
        images = images.flip(1)
    x = transform(images)
    b = x.shape[0]
    if crops == 10:
        x = x.flatten(0, 1)
    with autocast(dev, prec):
        logits = model(to_layout(x, prec)).float()
    if crops == 10:
        probs = logits.softmax(-1).view(b, 10, -1).mean(1)
        return probs, F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return logits, F.cross_entropy(logits, labels).item()


def _summary(meter: TopKMeter, classes: list, crops: int, dist) -> dict:
    if dist is not None:   # every rank saw its own shard: sum the counts
        meter.load_state(dist.reduce(meter.state()))
        if classes:
            stacked = dist.reduce(torch.stack([meter.class_correct, meter.class_total]).double()).long()
            meter.class_correct, meter.class_total = stacked[0], stacked[1]
    per_class = meter.per_class_accuracy() if classes else []
    return {
        "top1_error": meter.error(1), "top5_error": meter.error(5),
        "top1_accuracy": 1 - meter.error(1), "top5_accuracy": 1 - meter.error(5),
        "loss": meter.loss, "n": meter.n, "crops": crops,
        "per_class_accuracy": {name: acc for name, acc in zip(classes, per_class)},
    }


def evaluate_checkpoint(checkpoint: str, data: str, *, split: str = "val", crops: int = 1, batch_size: int = 128,
                        device: str = "auto", precision: str = "auto", workers: int | None = None,
                        dataset_kind: str = "auto", strict: bool = False, progress: bool = True,
                        max_batches: int | None = None) -> dict:
    """The library call behind ``alexnet eval``: load a checkpoint, evaluate it on ``data``'s ``split``."""
    from .data import open_dataset
    from .interop import load_model

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1; got {batch_size}")
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"--max-batches must be >= 1; got {max_batches} (0 batches would report n=0 as 100% error)")
    dev = resolve_device(device)
    model, ckpt = load_model(checkpoint)
    prep = ckpt.inference_preprocessing(checkpoint)
    dataset = open_dataset(data, split, image_size=prep["resize"], strict=strict, kind=dataset_kind)
    bad_at_open = len(getattr(dataset, "bad_files", []))
    ck_classes = ckpt.classes
    if ck_classes and not same_classes(dataset, ck_classes):
        raise ConfigError(f"{data} ({split}): its {len(dataset.classes)} classes differ from the checkpoint's "
                          f"{len(ck_classes)} classes (first: {list(dataset.classes)[:3]} vs {list(ck_classes)[:3]})")
    prec = resolve_precision(dev, precision)
    model = to_layout(model.to(dev), prec)
    result = evaluate(model, dataset, prep, crops=crops, batch_size=batch_size, device=dev, precision=precision,
                      workers=workers, progress=progress, max_batches=max_batches)
    result.update({"checkpoint": str(checkpoint), "data": str(data), "split": split,
                   "arch": ckpt.arch, "bad_files": bad_at_open + result["dropped"]})
    published = (ckpt.source or {}).get("publisher_accuracy")
    if published:   # named weights (alexnet.weights) carry their publisher's figures: print them side by side
        result["publisher_accuracy"] = {"weights": ckpt.source.get("weights"), **published}
    return result


def same_classes(dataset, classes) -> bool:
    """Whether a dataset's classes are a checkpoint's, in the same order.  ImageNet folders name their classes by
    wnid (``n01440764``) or by synset_words (``tench, Tinca tinca``) while converted weights record
    ``n01440764 tench``: the wnids (``dataset.class_ids``) decide then."""
    classes = [str(c) for c in classes]
    if list(dataset.classes) == classes:
        return True
    ids = getattr(dataset, "class_ids", None)
    return bool(ids) and len(ids) == len(classes) and all(c.split(" ", 1)[0] == i for c, i in zip(classes, ids))
