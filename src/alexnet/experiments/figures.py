"""``filters`` (Figure 3) and ``neighbours`` (Figure 4): pictures of a trained network, with numbers to compare.

Both use the network given with ``checkpoint``, or train the (scaled) two-tower paper network briefly for each
seed; both write to runs/experiments/figures by default, so the second reuses the first one's training run.
"""
from __future__ import annotations

from pathlib import Path

from .ablation import DEFAULTS as ABLATION_DEFAULTS
from .records import Experiment, ExperimentConfig, Printer, Result, Variant
from .runs import ensure_data, run_variant
from .tables import finish, markdown_table, setup_line

# The same training as the towers experiment's two-tower run, which is therefore reused when it has finished.
DEFAULTS = {**ABLATION_DEFAULTS, "seeds": (0,), "queries": 8, "neighbours": 6}
SPECIFIC = 0.5          # a kernel counts as colour-specific when most of its energy is colour-opponent
STAT_QUERIES = 200      # validation images whose neighbours give the same-class fractions
PIXEL_SIZE = 64         # the pixel-space baseline compares images at most this size


def _networks(cfg: ExperimentConfig, printer: Printer, name: str) -> tuple[list[dict], str]:
    """[{source, seed, model, ckpt}] from --checkpoint, or one brief training run per seed; plus a setup sentence."""
    from ..interop import load_model

    if cfg.checkpoint:
        model, ckpt = load_model(cfg.checkpoint)
        seed = (ckpt.train_config or {}).get("seed")
        return [{"source": str(cfg.checkpoint), "seed": seed, "model": model, "ckpt": ckpt}], \
            f"network: checkpoint `{cfg.checkpoint}` ({ckpt.arch})"
    data = ensure_data(cfg, printer)
    v = Variant("paper", "paper")
    nets, tcfg = [], None
    for seed in cfg.seeds:
        run = run_variant(cfg, v, seed, data, printer, f"[{name}] ")
        model, ckpt = load_model(run["run_dir"] / "last.pt")
        nets.append({"source": str(run["run_dir"] / "last.pt"), "seed": seed, "model": model, "ckpt": ckpt})
        tcfg = run["train_config"]
    return nets, "network: the two-tower paper network, scaled, trained briefly (the same run as the towers " \
                 "experiment's `two-towers` with these settings); " + \
        setup_line(cfg, data, "paper", tcfg)


def _init_model(model, seed):
    """The same network as the trainer initialised it for ``seed`` (train() seeds torch before building)."""
    import torch

    from ..model import model_from_config

    torch.manual_seed(seed if seed is not None else 0)
    return model_from_config(model.config)


def run_filters(exp: Experiment, cfg: ExperimentConfig, printer: Printer) -> Result:
    from ..viz import colour_specificity, plot_filters, tower_colour_specificity

    nets, setup = _networks(cfg, printer, exp.name)
    out = Path(cfg.out)
    rows, files = [], {}
    for i, net in enumerate(nets):
        model = net["model"]
        if model.layer("conv1").weight.shape[1] != 3:
            from ..errors import ConfigError

            raise ConfigError(f"{net['source']}: conv1 has {model.layer('conv1').weight.shape[1]} input channels; "
                              "colour specificity needs an RGB network")
        png = out / ("filters.png" if i == 0 else f"filters-seed{net['seed']}.png")
        plot_filters(model, png, title=f"conv1 kernels per tower ({Path(net['source']).parent.name or net['source']})")
        files["png" if i == 0 else f"png_seed{net['seed']}"] = str(png)
        towers = model.config.towers
        spec = colour_specificity(model.layer("conv1").weight)
        trained, at_init = tower_colour_specificity(model), tower_colour_specificity(_init_model(model, net["seed"]))
        per = len(spec) // towers
        for t in range(towers):
            mine = spec[t * per:(t + 1) * per]
            rows.append({"experiment": "filters", "source": net["source"], "seed": net["seed"], "tower": t + 1,
                         "kernels": per, "colour_specificity": trained[t],
                         "colour_specific_share": sum(s > SPECIFIC for s in mine) / per,
                         "colour_specificity_at_init": at_init[t], "config": model.config.to_dict()})
    summary = []
    for net in nets:
        rs = [r for r in rows if r["source"] == net["source"]]
        if len(rs) == 2:
            summary.append({"source": net["source"], "seed": net["seed"],
                            "tower_difference": rs[1]["colour_specificity"] - rs[0]["colour_specificity"],
                            "most_colour_specific_tower": max(rs, key=lambda r: r["colour_specificity"])["tower"]})
    result = Result(exp.name, rows, summary, files)
    table = markdown_table([{**r, "spec": f"{r['colour_specificity']:.3f}",
                             "share": f"{100 * r['colour_specific_share']:.0f}%",
                             "init": f"{r['colour_specificity_at_init']:.3f}"} for r in rows],
                           [("seed", "seed"), ("tower", "tower"), ("kernels", "kernels"),
                            ("spec", "colour specificity (mean)"), ("share", f"kernels > {SPECIFIC}"),
                            ("init", "same, at initialisation")])
    lines = [f"### `{exp.name}`: {exp.title}", "", f"**Paper:** {exp.claim}", "", f"**Setup:** {setup}.", "",
             "Colour specificity of a kernel: the share of its energy (DC removed) that is not common to R, G and B "
             "— 0 for a grey kernel, 1 for a pure colour-opponent one; random N(0, s) kernels score about 2/3. "
             "Mean per tower, the share of kernels above 0.5, and the same network's value at initialisation:", "",
             table, ""]
    for s in summary:
        lines.append(f"Measured (seed {s['seed']}): tower {s['most_colour_specific_tower']} is the more "
                     f"colour-specific one, by {abs(s['tower_difference']):.3f}.")
    lines += ["", "![filters](filters.png)"]
    return finish(result, cfg, "\n".join(lines), printer, exp)


def _same_class_fraction(query_feats, query_labels, db_feats, db_labels, k: int) -> float:
    from ..viz import nearest_neighbours

    nn_idx = nearest_neighbours(query_feats, db_feats, k)
    hits = sum(db_labels[j] == q for q, row in zip(query_labels, nn_idx) for j in row)
    return hits / max(1, sum(len(row) for row in nn_idx))


def _pixels(x, most: int = PIXEL_SIZE):
    """Images as pixel vectors for the pixel-space baseline, area-averaged down to at most ``most`` px a side
    (2000 full-size ImageNet images would need 1.5 GB as floats)."""
    import torch.nn.functional as F

    x = x.float()
    if x.shape[-1] > most:
        x = F.adaptive_avg_pool2d(x, most)
    return x.flatten(1)


def run_neighbours(exp: Experiment, cfg: ExperimentConfig, printer: Printer) -> Result:
    import torch

    from ..data import open_dataset
    from ..features import batch_features
    from ..runtime import resolve_device
    from ..viz import neighbours_figure

    nets, setup = _networks(cfg, printer, exp.name)
    data = ensure_data(cfg, printer)
    out = Path(cfg.out)
    dev = resolve_device(cfg.device)
    rows, files = [], {}
    for i, net in enumerate(nets):
        model, prep = net["model"].to(dev).eval(), net["ckpt"].preprocessing
        train_set = open_dataset(str(data), "train", image_size=prep["resize"])
        val_set = open_dataset(str(data), "val", image_size=prep["resize"])
        classes = net["ckpt"].classes
        if classes and list(classes) != list(train_set.classes):
            from ..errors import ConfigError

            raise ConfigError(f"{net['source']}: trained on {len(classes)} classes ({', '.join(classes[:3])}, ...), "
                              f"not on {data}'s {len(train_set.classes)}; give the --data it was trained on")
        png = out / ("neighbours.png" if i == 0 else f"neighbours-seed{net['seed']}.png")
        seed = net["seed"] or 0
        fig = neighbours_figure(model, prep, train_set, val_set, png, queries=cfg.queries, k=cfg.neighbours,
                                seed=seed, device=cfg.device)
        files["png" if i == 0 else f"png_seed{net['seed']}"] = str(png)
        # The figure's few queries give a noisy fraction: measure it on more queries, and against raw pixels.
        g = torch.Generator().manual_seed(seed)
        db_idx = torch.randperm(len(train_set), generator=g)[:2000].tolist()
        q_idx = torch.randperm(len(val_set), generator=g)[:STAT_QUERIES].tolist()

        def images(ds, idx):
            return torch.stack([ds[j][0] for j in idx]), [int(ds[j][1]) for j in idx]

        db_x, db_y = images(train_set, db_idx)
        q_x, q_y = images(val_set, q_idx)

        def fc_feats(x, model=model, prep=prep, layer=fig["layer"]):
            parts = [batch_features(model, x[s:s + 64].to(dev), prep, [layer])[layer].flatten(1).cpu()
                     for s in range(0, len(x), 64)]
            return torch.cat(parts)

        fc = _same_class_fraction(fc_feats(q_x), q_y, fc_feats(db_x), db_y, cfg.neighbours)
        px = _same_class_fraction(_pixels(q_x), q_y, _pixels(db_x), db_y, cfg.neighbours)
        rows.append({"experiment": "neighbours", "source": net["source"], "seed": net["seed"], "layer": fig["layer"],
                     "queries": len(q_idx), "k": cfg.neighbours, "database_images": len(db_idx),
                     "same_class_fraction": fc, "same_class_fraction_pixels": px, "chance": 1 / len(train_set.classes),
                     "figure_same_class_fraction": fig["same_class_fraction"], "figure_queries": fig["queries"]})
    result = Result(exp.name, rows, [], files)
    table = markdown_table([{"seed": r["seed"], "layer": r["layer"], "q": r["queries"], "k": r["k"],
                             "db": r["database_images"], "fc": f"{100 * r['same_class_fraction']:.0f}%",
                             "px": f"{100 * r['same_class_fraction_pixels']:.0f}%",
                             "chance": f"{100 * r['chance']:.0f}%"} for r in rows],
                           [("seed", "seed"), ("q", "query images (val)"), ("k", "neighbours each"),
                            ("db", "training images searched"), ("fc", "same class, by fc7 distance"),
                            ("px", "same class, by pixel distance"), ("chance", "chance")])
    lines = [f"### `{exp.name}`: {exp.title}", "", f"**Paper:** {exp.claim}", "", f"**Setup:** {setup}.", "",
             "Share of the nearest training images (Euclidean distance) that belong to the query's class, by the "
             "network's feature vector and, for comparison, by raw pixels:", "", table, ""]
    for r in rows:
        lines.append(f"Measured (seed {r['seed']}): {100 * r['same_class_fraction']:.0f}% of the {r['layer']} "
                     f"neighbours share the query's class, against {100 * r['same_class_fraction_pixels']:.0f}% of "
                     f"the pixel-space neighbours and {100 * r['chance']:.0f}% by chance.")
    lines += ["", "![neighbours](neighbours.png)"]
    return finish(result, cfg, "\n".join(lines), printer, exp)


FILTERS = Experiment(
    name="filters", title="conv1 kernels per tower (Figure 3)",
    claim="The 96 conv1 kernels learned on the two GPUs specialise: the kernels on GPU 1 are largely "
          "colour-agnostic, those on GPU 2 largely colour-specific; this happens in every run, independently of "
          "the random initialization (up to which GPU gets which).",
    defaults=DEFAULTS, runner=run_filters, folder="figures")

NEIGHBOURS = Experiment(
    name="neighbours", title="nearest training images by fc7 distance (Figure 4)",
    claim="Test images and the six training images whose last-hidden-layer (fc7, 4096-d) feature vectors are "
          "nearest in Euclidean distance: the neighbours are of the query's class although they are not close "
          "in pixel space (different poses, for instance).",
    defaults=DEFAULTS, runner=run_neighbours, folder="figures")
