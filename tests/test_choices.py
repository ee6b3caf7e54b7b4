"""One source of truth for every choice: the CLI's choice lists and the library's registries equal alexnet.choices."""
import argparse
import dataclasses
import subprocess
import sys

import pytest

from alexnet import choices
from alexnet.cli import build_parser
from alexnet.config import TrainConfig

# option name -> the library's list it must equal, wherever a verb offers it
EXPECTED = {
    "--arch": choices.ARCHS, "--dataset": choices.DATASET_KINDS, "--schedule": choices.SCHEDULES,
    "--init": choices.INITS, "--inits": choices.INITS, "--precision": choices.PRECISIONS,
    "--lrn-convention": choices.LRN_CONVENTIONS,
    "--activation": choices.ACTIVATIONS, "--optimizer": choices.OPTIMIZERS, "--normalize": choices.NORMALIZATIONS,
    "--format": choices.EXPORT_FORMATS, "--lrn-backend": choices.LRN_BACKENDS, "--towers": choices.TOWERS,
    "--split": choices.SPLITS, "--crops": choices.EVAL_CROPS, "--val-crops": choices.EVAL_CROPS,
    "--pool": choices.FEATURE_POOLS, "--mean": choices.MEANS, "--recipe": choices.RECIPE_CHOICES,
    "--freeze": choices.FREEZE_LAYERS,
}


def _verbs():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = set()
    for name, p in sub.choices.items():
        if id(p) not in seen:
            seen.add(id(p))
            yield name, p
            for a in p._actions:   # nested verbs (alexnet data synth, alexnet bench lrn, ...)
                if isinstance(a, argparse._SubParsersAction):
                    for sub_name, q in a.choices.items():
                        yield f"{name} {sub_name}", q


def _choice_actions():
    for verb, p in _verbs():
        for a in p._actions:
            if a.choices is not None and a.option_strings and not isinstance(a, argparse._SubParsersAction):
                yield verb, a


def test_every_cli_choice_list_equals_the_librarys():
    checked = 0
    for verb, action in _choice_actions():
        flag = next(s for s in action.option_strings if s.startswith("--"))
        assert flag in EXPECTED, f"alexnet {verb} {flag}: a choice list the test does not know; add it to choices.py"
        assert tuple(action.choices) == tuple(EXPECTED[flag]), f"alexnet {verb} {flag}"
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("verb", ["train", "eval", "model"])
def test_help_shows_no_meaningless_default(verb, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: True)" not in text and "(default: False)" not in text


def test_train_flags_are_the_config_fields_with_their_defaults():
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    from alexnet.cli.train import config_from_args

    cfg = config_from_args(args)
    default = TrainConfig(data="d", out="o")
    assert cfg == default      # every default comes from the dataclass, none is restated by the CLI
    flags = {s for _, a in _choice_actions() for s in a.option_strings}
    assert "--schedule" in flags
    parsed = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--no-flip", "--strict",
                                        "--batch-size", "7", "--dataset", "cifar10", "--channels-last"])
    cfg = config_from_args(parsed)
    assert (cfg.flip, cfg.strict_data, cfg.batch_size, cfg.dataset_kind, cfg.channels_last) == (
        False, True, 7, "cifar10", True)
    cli_fields = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)}
    assert cli_fields <= set(vars(args))


def test_schedule_registry_equals_choices():
    from alexnet.schedules import SCHEDULE_REGISTRY

    assert tuple(SCHEDULE_REGISTRY) == choices.SCHEDULES


def test_names_and_configs_import_without_torch():
    code = ("import sys; import alexnet.choices, alexnet.config, alexnet.schedules, alexnet.cli; "
            "alexnet.cli.build_parser(); assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
