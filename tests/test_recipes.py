"""Recipes (alexnet.recipes): every recipe is a valid config, explicit settings win, "auto" says what it chose and
why; --freeze keeps layers fixed; finetune trains the head and the pretrained layers at their own learning rates."""
import dataclasses
import math

import pytest
import torch

from alexnet import choices
from alexnet.cli import build_parser
from alexnet.cli.train import config_from_args
from alexnet.config import TrainConfig
from alexnet.errors import ConfigError
from alexnet.model import build_model
from alexnet.optim import LRSchedule, PaperSGD, make_optimizer, trainable_groups
from alexnet.recipes import (
    RECIPE_REGISTRY,
    SMALL_DATA_LIMIT,
    choose_recipe,
    inherit_run_settings,
    recipe_fields,
    register_recipe,
    resolve_recipe,
)
from alexnet.train import Trainer, train
from alexnet.train_data import resolve_normalize

# The defaults of TrainConfig before recipes existed: the paper's section 5 (and section 4.1's input).
SECTION_5 = dict(batch_size=128, lr=0.01, momentum=0.9, weight_decay=0.0005, optimizer="paper", schedule="plateau",
                 patience=3, max_reductions=3, warmup_epochs=0.0, pretrained_lr_mult=1.0, normalize="auto",
                 freeze=None)


def cfg(**kw):
    return TrainConfig(**{"data": "d", "out": "o", **kw})


def quiet(_):
    pass


@pytest.mark.parametrize("name", choices.RECIPES)
def test_every_registered_recipe_yields_a_valid_config(name):
    assert tuple(RECIPE_REGISTRY) == choices.RECIPES
    resolved, line = resolve_recipe(cfg(recipe=name))
    resolved.validate()
    assert resolved.recipe == name and line == f"recipe: {name} (--recipe {name})"
    assert all(getattr(resolved, f) is not None for f in recipe_fields())
    assert resolve_recipe(resolved)[0] == resolved                     # resolving twice changes nothing
    model = build_model("paper", num_classes=5, fc_size=32, input_size=64, **resolved.model)
    opt = make_optimizer(trainable_groups(model, pretrained_lr_mult=resolved.pretrained_lr_mult), resolved.optimizer,
                         lr=resolved.lr, momentum=resolved.momentum, weight_decay=resolved.weight_decay)
    LRSchedule(opt, resolved.schedule, base_lr=resolved.lr, epochs=3)


def test_a_recipe_must_set_every_recipe_field_and_be_named_in_choices():
    with pytest.raises(ValueError, match="not named in alexnet.choices.RECIPES"):
        register_recipe("mine", "x")
    with pytest.raises(ValueError, match=r"recipe 'small': missing \['batch_size'"):
        register_recipe("small", "x", **{k: v for k, v in RECIPE_REGISTRY["small"].values.items() if k != "batch_size"})
    assert RECIPE_REGISTRY["small"].values["batch_size"] == 32   # the failed registration left the entry alone
    values = RECIPE_REGISTRY["small"].values
    with pytest.raises(ValueError, match=r"recipe 'small': model switches \['lrn'\] are not among"):
        register_recipe("small", "x", model={"lrn": False}, **values)
    with pytest.raises(ValueError, match=r"recipe 'small': dropout 1.0 is not in \[0, 1\)"):
        register_recipe("small", "x", model={"dropout": 1.0}, **values)
    assert RECIPE_REGISTRY["small"].model == {"init": "kaiming", "dropout": 0.0}


def test_paper_recipe_is_section_5_exactly():
    resolved, _ = resolve_recipe(cfg(recipe="paper"))
    assert {k: getattr(resolved, k) for k in SECTION_5} == SECTION_5
    assert resolved.model == {}                                        # the network's own init: the paper's
    assert resolve_normalize(resolved) == "paper"                      # mean-subtracted 0-255 input
    model = build_model("paper", num_classes=10, **resolved.model)
    assert model.config.init == "paper"
    torch.manual_seed(0)
    model = build_model("paper", num_classes=10, **resolved.model)
    for name in model.layer_names:
        layer = model.layer(name)
        assert abs(layer.weight.std().item() - 0.01) < 0.001, name   # N(0, 0.01)
        bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert torch.equal(layer.bias, torch.full_like(layer.bias, bias)), name
    opt = make_optimizer(model.parameters(), resolved.optimizer, lr=resolved.lr, momentum=resolved.momentum,
                         weight_decay=resolved.weight_decay)
    assert isinstance(opt, PaperSGD) and len(opt.param_groups) == 1
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"], opt.param_groups[0]["weight_decay"]) == (
        0.01, 0.9, 0.0005)


def test_small_recipe_values():
    resolved, _ = resolve_recipe(cfg(recipe="small"))
    assert resolved.model == {"init": "kaiming", "dropout": 0.0} and resolve_normalize(resolved) == "standard"
    assert (resolved.batch_size, resolved.lr, resolved.schedule, resolved.warmup_epochs) == (32, 0.02, "cosine", 0.3)
    net = build_model("paper", num_classes=3, fc_size=32, **resolved.model)
    assert net.config.dropout == 0.0 and net.drop6.p == net.drop7.p == 0.0     # the network gets the recipe's dropout
    assert "kaiming init, dropout 0, standard input scaling, batch 32" in RECIPE_REGISTRY["small"].describe()
    assert "dropout" not in RECIPE_REGISTRY["paper"].describe()                # the paper's own: 0.5 (section 4.2)


def test_explicit_python_values_win_over_the_recipe():
    resolved, line = resolve_recipe(cfg(recipe="small", lr=0.05, batch_size=128, normalize="paper",
                                        model={"init": "paper", "fc_size": 32}))
    assert (resolved.lr, resolved.batch_size, resolved.normalize) == (0.05, 128, "paper")
    assert resolved.model == {"init": "paper", "fc_size": 32, "dropout": 0.0}
    assert (resolved.schedule, resolved.warmup_epochs) == ("cosine", 0.3)   # what was not given: the recipe's
    assert line == ("recipe: small (--recipe small); set explicitly, over the recipe: init paper, batch_size 128, "
                    "lr 0.05, normalize paper")
    # a value equal to the recipe's is still the user's: it stays when the recipe would say otherwise
    assert resolve_recipe(cfg(recipe="paper", lr=0.01))[0].lr == 0.01


def test_explicit_flags_win_over_the_recipe():
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--recipe", "paper", "--lr", "0.05",
                                      "--init", "kaiming", "--warmup-epochs", "2", "--momentum", "0.9"])
    resolved, _ = resolve_recipe(config_from_args(args))
    assert (resolved.lr, resolved.warmup_epochs, resolved.model["init"], resolved.momentum) == (0.05, 2.0, "kaiming",
                                                                                               0.9)
    assert (resolved.batch_size, resolved.schedule, resolved.optimizer) == (128, "plateau", "paper")
    # no flag given: every recipe field is None before the recipe, i.e. the recipe's
    plain = config_from_args(build_parser().parse_args(["train", "--data", "d", "--out", "o"]))
    assert plain.recipe == "auto" and plain.explicit() == {} and "init" not in plain.model
    assert "dropout" not in plain.model
    given = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--recipe", "small", "--dropout", "0.5"])
    resolved, line = resolve_recipe(config_from_args(given))
    assert resolved.model == {"init": "kaiming", "dropout": 0.5}
    assert line == "recipe: small (--recipe small); set explicitly, over the recipe: dropout 0.5"


def test_auto_choice_and_its_line():
    assert choose_recipe(cfg(), 4000) == ("small", "auto: 4,000 training images < 100,000; --recipe paper for the "
                                                   "paper's section-5 recipe")
    assert choose_recipe(cfg(), SMALL_DATA_LIMIT) == (
        "paper", "auto: 100,000 training images >= 100,000; --recipe small for the small-data recipe")
    assert choose_recipe(cfg(recipe="paper"), 10) == ("paper", "--recipe paper")
    assert choose_recipe(cfg(weights="w.pt"), 10) == (
        "finetune", "auto: --weights given; --recipe small or --recipe paper to train every layer at one learning rate")
    assert choose_recipe(cfg(weights="w.pt", recipe="small"), 10)[0] == "small"
    with pytest.raises(ConfigError, match="recipe auto: needs the number of training images"):
        resolve_recipe(cfg())


def test_train_prints_the_recipe_first(tiny_data, tmp_path, capsys):
    from alexnet.cli import main

    rc = main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--epochs", "1", "--resize", "72",
               "--crop", "64", "--fc-size", "32", "--no-progress", "--workers", "0", "--steps-per-epoch", "1"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "recipe: small (auto: 24 training images < 100,000; --recipe paper for the paper's " \
                       "section-5 recipe)"
    assert lines[1].startswith("alexnet train: paper on") and ", batch 32," in lines[1]
    log = (tmp_path / "r" / "train.log").read_text()
    assert lines[0] in log
    import json

    saved = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert saved["recipe"] == "small" and saved["lr"] == 0.02 and saved["model"]["init"] == "kaiming"


def tiny(data, out, **kw):
    base = dict(data=str(data), out=str(out), arch="paper", model={"fc_size": 32}, epochs=1, batch_size=8,
                resize=72, crop=64, seed=3, workers=0, progress=False, precision="fp32")
    return TrainConfig(**{**base, **kw})


def test_freeze_keeps_the_first_layers_bit_identical(tiny_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("paper", num_classes=3, fc_size=32, input_size=64, init="kaiming")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(tiny(tiny_data, tmp_path / "f", freeze="conv3", recipe="small"), printer=quiet, model=model)
    trainer.fit()
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    after = model.state_dict()
    for name in model.layer_names:
        for pname, p in model.layer(name).named_parameters():
            key = f"{name}.{pname}"
            frozen = name in ("conv1", "conv2", "conv3")
            assert p.requires_grad is not frozen and (id(p) in in_optimizer) is not frozen, key
            assert torch.equal(before[key], after[key]) is frozen, key
    assert trainer.state.step == 3


def test_freeze_names_the_layers_it_accepts():
    model = build_model("cifar", num_classes=3)
    with pytest.raises(ConfigError, match=r"^--freeze fc6: not a layer below the head of cifar; one of conv1, "
                                          r"conv2, conv3$"):
        trainable_groups(model, freeze="fc6")
    with pytest.raises(ConfigError, match="freeze must be one of"):
        cfg(freeze="fc8").validate()


def test_finetune_recipe_gives_head_and_pretrained_layers_their_lrs(tiny_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("paper", num_classes=3, fc_size=32, input_size=64)
    trainer = Trainer(tiny(tiny_data, tmp_path / "ft", recipe="finetune", epochs=4), printer=quiet, model=model)
    trainer.setup()
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert set(groups) == {"pretrained", "head"}
    assert groups["head"]["lr"] == pytest.approx(0.01) and groups["pretrained"]["lr"] == pytest.approx(0.001)
    assert {id(p) for p in groups["head"]["params"]} == {id(p) for p in model.fc8.parameters()}
    assert len(groups["pretrained"]["params"]) == 14                    # conv1..fc7: weight and bias each
    trainer.schedule.epoch_end(0, 0.5)                                   # cosine: both scaled alike
    assert groups["pretrained"]["lr"] == pytest.approx(0.1 * groups["head"]["lr"])
    assert groups["head"]["lr"] == pytest.approx(0.01 * 0.5 * (1 + 0.7071067811865476))
    trainer.run.close()
    lines = []
    scratch = Trainer(tiny(tiny_data, tmp_path / "ft2", recipe="finetune"), printer=lines.append)
    scratch.setup()
    scratch.run.close()
    assert lines[0] == "recipe: finetune (--recipe finetune); set explicitly, over the recipe: batch_size 8"
    assert lines[1].startswith("warning: --recipe finetune trains a pretrained network's new head; without "
                               "pretrained weights")


def test_finetune_with_freeze_trains_the_rest_at_their_lrs():
    model = build_model("paper", num_classes=3, fc_size=32, input_size=64)
    groups = trainable_groups(model, freeze="conv5", pretrained_lr_mult=0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [sorted(names[id(p)] for p in g["params"]) for g in groups] == [
        ["fc6.bias", "fc6.weight", "fc7.bias", "fc7.weight"], ["fc8.bias", "fc8.weight"]]
    assert [g["lr_mult"] for g in groups] == [0.1, 1.0]
    assert len(trainable_groups(build_model("paper", num_classes=3, fc_size=32, input_size=64), freeze="fc7",
                            pretrained_lr_mult=0.1)) == 1   # only the head left


def test_warmup_ramps_linearly_per_step_then_hands_over_to_the_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([{"params": [p], "lr_mult": 0.5}], "paper", lr=0.02, momentum=0.9, weight_decay=0)
    sched = LRSchedule(opt, "constant", base_lr=0.02, epochs=3, warmup_steps=4)
    seen = []
    for step in range(6):
        sched.before_step(step)
        seen.append(opt.param_groups[0]["lr"])
    assert seen == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_trainer_warmup_is_one_epoch_of_steps(tiny_data, tmp_path):
    trainer = Trainer(tiny(tiny_data, tmp_path / "w", recipe="small", batch_size=4), printer=quiet)
    trainer.setup()
    assert trainer.batches_per_epoch() == 6 and trainer.schedule.warmup_steps == 2   # round(0.3 * 6)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)   # until the first step's warm-up
    trainer.schedule.before_step(0)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    trainer.schedule.before_step(1)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    trainer.run.close()


def test_resume_with_another_recipe_is_refused(tiny_data, tmp_path):
    train(tiny(tiny_data, tmp_path / "r", recipe="small"), printer=quiet)
    with pytest.raises(ConfigError, match=r"that run used --recipe small, this one finetune; resume with --recipe "
                                          r"small"):
        train(tiny(tiny_data, tmp_path / "r", recipe="finetune", batch_size=8, epochs=2), resume=tmp_path / "r",
              printer=quiet)


def test_resume_keeps_the_runs_dropout_whatever_the_recipe_says_now(tiny_data, tmp_path):
    # A run with dropout 0.3 given explicitly, resumed without the flag: the checkpoint's 0.3, not small's 0.
    train(tiny(tiny_data, tmp_path / "r", recipe="small", model={"fc_size": 32, "dropout": 0.3}), printer=quiet)
    trainer = Trainer(tiny(tiny_data, tmp_path / "r", recipe="small", epochs=2), printer=quiet)
    trainer.setup(resume=tmp_path / "r")
    assert trainer.model.config.dropout == 0.3 and trainer.model.drop6.p == 0.3
    trainer.run.close()
    # A run from before `small` set a dropout (its config.json's model names none; its network had the paper's 0.5).
    old = inherit_run_settings(cfg(), {"recipe": "small", "model": {"init": "kaiming", "fc_size": 32}},
                               {"init": "kaiming", "dropout": 0.5, "fc_size": 32})
    resolved, _ = resolve_recipe(old)
    assert resolved.recipe == "small" and resolved.model["dropout"] == 0.5
    assert resolve_recipe(inherit_run_settings(cfg(model={"dropout": 0.1}), {"recipe": "small"},
                                               {"dropout": 0.5}))[0].model["dropout"] == 0.1   # a flag still wins


def test_given_model_must_have_the_datas_classes(tiny_data, tmp_path):
    model = build_model("paper", num_classes=7, fc_size=32, input_size=64)
    with pytest.raises(ConfigError, match=r"the given model has 7 classes, .* has 3; replace its head \(fc8\) first"):
        Trainer(tiny(tiny_data, tmp_path / "m", recipe="finetune"), printer=quiet, model=model).fit()
    assert not (tmp_path / "m").exists()


def test_recipe_fields_default_to_none_and_say_so_in_help(capsys):
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in recipe_fields():
        assert fields[name].default is None and fields[name].metadata["default_text"] == "the recipe's"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "small: from scratch on a small dataset" in text and "--lr LR learning rate" in text


def test_mid_epoch_resume_during_the_warmup_is_bitwise_exact(tiny_data, tmp_path, ctrl_c_at_batch):
    from alexnet.checkpoint import load_checkpoint

    def run_cfg(out, **kw):   # 3 batches an epoch, warm-up over the first 6 steps: the crash falls inside it
        return tiny(tiny_data, out, recipe="small", epochs=2, warmup_epochs=2.0, deterministic=True, **kw)

    train(run_cfg(tmp_path / "straight"), printer=quiet)
    with ctrl_c_at_batch(5):
        train(run_cfg(tmp_path / "crash", save_every=1), printer=quiet)
    train(run_cfg(tmp_path / "crash", save_every=1), resume=tmp_path / "crash", printer=quiet)
    a, b = (load_checkpoint(tmp_path / d / "last.pt").state_dict for d in ("straight", "crash"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_demo_trains_with_a_recipe_and_measures_how_far_conv1_moved(tmp_path):
    import json

    from alexnet.demo import DemoConfig, run_demo

    lines = []
    data = tmp_path / "synth"
    cfg = DemoConfig(data=str(data), out=str(tmp_path / "demo"), epochs=1, batch_size=4, resize=72, crop=64,
                     fc_size=32, classes=3, train_per_class=4, val_per_class=2, image_size=64, steps_per_epoch=2,
                     progress=False)
    result = run_demo(cfg, printer=lines.append)
    text = "\n".join(lines)
    assert "training recipe small: init kaiming, dropout 0, standard input, batch 4, lr 0.02" in text
    assert "recipe: small (--recipe small); set explicitly, over the recipe: batch_size 4" in text
    saved = json.loads((tmp_path / "demo" / "config.json").read_text())["train"]
    assert saved["recipe"] == "small" and saved["model"]["init"] == "kaiming"
    assert 0 < result["conv1_relative_change"] < 1 and len(result["conv1_change_colour_specificity"]) == 2
    assert (tmp_path / "demo" / "filters_change.png").stat().st_size > 1000
    assert f"conv1 moved {100 * result['conv1_relative_change']:.0f}% from its initialisation" in text


def test_conv1_change_is_zero_at_init_and_measures_the_move():
    from alexnet.viz import conv1_change

    torch.manual_seed(5)
    model = build_model("paper", num_classes=3, fc_size=32, input_size=64, init="kaiming")
    assert conv1_change(model, seed=5)["relative_change"] == 0.0
    with torch.no_grad():
        model.conv1.weight.mul_(1.5)
    assert conv1_change(model, seed=5)["relative_change"] == pytest.approx(0.5, rel=1e-5)


def test_resume_with_more_epochs_spreads_the_cosine_over_them():
    p = torch.nn.Parameter(torch.zeros(1))
    short = LRSchedule(make_optimizer([p], "paper", lr=0.02, momentum=0.9, weight_decay=0), "cosine", base_lr=0.02,
                       epochs=4)
    for epoch in range(4):
        short.epoch_end(epoch, None)
    assert short.lr == pytest.approx(0.0, abs=1e-12)
    longer = LRSchedule(make_optimizer([p], "paper", lr=0.02, momentum=0.9, weight_decay=0), "cosine", base_lr=0.02,
                        epochs=8)
    longer.load_state_dict(short.state_dict())
    longer.epoch_end(4, None)
    assert longer.lr == pytest.approx(0.5 * 0.02 * (1 + math.cos(math.pi * 5 / 8)))


def test_plateau_warning_points_to_the_small_recipe():
    from alexnet.train import flat_loss_hint

    paper = flat_loss_hint(2.305, 10, "paper", "paper")
    assert paper.endswith("try --recipe small, --init caffe, --init kaiming, a lower --lr, or more epochs.")
    assert flat_loss_hint(2.305, 10, "kaiming", "small").endswith("try --init caffe, a lower --lr, or more epochs.")
    assert flat_loss_hint(1.9, 10, "paper", "paper") is None


def test_weights_take_the_finetune_recipe_with_freeze(tiny_data, tmp_path):
    """--weights: auto takes finetune (head at lr, the rest at lr/10); --freeze conv2 keeps conv1/conv2 as loaded."""
    from alexnet.checkpoint import load_checkpoint
    from test_weights import _small_paper_checkpoint

    src = _small_paper_checkpoint(tmp_path / "src.pt", classes=5)

    def run_cfg(out):
        return TrainConfig(data=str(tiny_data), out=str(tmp_path / out), weights=str(tmp_path / "src.pt"), epochs=1,
                           batch_size=4, steps_per_epoch=2, val_every=0, device="cpu", precision="fp32",
                           progress=False, freeze="conv2")

    lines = []
    looked = Trainer(run_cfg("setup"), printer=lines.append)
    looked.setup()
    looked.run.close()
    assert lines[0] == ("recipe: finetune (auto: --weights given; --recipe small or --recipe paper to train every "
                        "layer at one learning rate); set explicitly, over the recipe: batch_size 4")
    groups = {g["name"]: g for g in looked.optimizer.param_groups}
    assert groups["head"]["lr"] == pytest.approx(0.01) and groups["pretrained"]["lr"] == pytest.approx(0.001)
    names = {id(p): n for n, p in looked.model.named_parameters()}
    assert sorted(names[id(p)] for p in groups["head"]["params"]) == ["fc8.bias", "fc8.weight"]
    assert len(groups["pretrained"]["params"]) == 10 and not any(   # conv3..fc7, weight and bias each
        names[id(p)].startswith(("conv1.", "conv2.")) for p in groups["pretrained"]["params"])
    train(run_cfg("ft"), printer=quiet)
    trained = load_checkpoint(tmp_path / "ft" / "last.pt").state_dict
    for k in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        assert torch.equal(trained[k], src.state_dict[k]), k            # frozen: exactly the pretrained tensors
    assert not torch.equal(trained["conv3.weight"], src.state_dict["conv3.weight"])
