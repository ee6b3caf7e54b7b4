"""Command-line flags generated from a config dataclass: its fields, types, defaults and metadata.

A field ``batch_size: int = option(128, "help")`` becomes ``--batch-size`` (type int, default 128, help with the
true default); a bool field that defaults to True becomes ``--no-NAME`` (and ``--NAME``, stating the default), one
that defaults to False ``--NAME``, a ``bool | None`` both; ``choices`` come from the field's metadata
(``alexnet.choices``). Nothing is written twice.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

_GROUP_TITLES = {"run": "run", "training": "training (section 5)", "data": "data and augmentation (sections 2, 4.1)",
                 "validation": "validation", "runtime": "runtime"}


def _base_type(tp: Any) -> tuple[type, bool]:
    """(int/float/str/bool/dict, optional?) of an annotation such as ``int | None``."""
    args = typing.get_args(tp)
    if args:
        non_none = [a for a in args if a is not type(None)]
        return non_none[0], len(non_none) < len(args)
    return tp, False


def _help(f: dataclasses.Field, shown_default: str | None) -> str:
    text = f.metadata.get("help", "")
    if shown_default is not None:
        text += f" (default: {shown_default})"
    return text.replace("%", "%%")


def _shown_default(f: dataclasses.Field) -> str | None:
    if f.metadata.get("default_text"):
        return f.metadata["default_text"]
    if f.default is dataclasses.MISSING or f.default is None:
        return None
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return str(f.default)


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _add_bool(group, f: dataclasses.Field, optional: bool) -> None:
    name = flag_name(f)
    negative = f.metadata.get("negative") or "--no-" + name[2:]
    default = _shown_default(f)
    if optional:   # None: decided at run time (e.g. channels_last by the precision)
        group.add_argument(name, dest=f.name, action="store_true", default=None, help=_help(f, default))
        group.add_argument(negative, dest=f.name, action="store_false", help="force it off")
    elif f.default:   # both switches: a script (or a recipe's default) can state either explicitly
        group.add_argument(negative, dest=f.name, action="store_false", default=True,
                           help="off: " + _help(f, "on"))
        group.add_argument(name, dest=f.name, action="store_true", help="on (the default)")
    else:
        group.add_argument(name, dest=f.name, action="store_true", default=False, help=_help(f, None))


def add_config_flags(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per CLI field of dataclass ``cls`` (fields with ``metadata['cli']`` false are skipped)."""
    groups: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        title = f.metadata.get("group", "options")
        if title not in groups:
            groups[title] = parser.add_argument_group(_GROUP_TITLES.get(title, title))
        group = groups[title]
        tp, optional = _base_type(hints[f.name])
        if tp is bool:
            _add_bool(group, f, optional)
            continue
        kw: dict[str, Any] = {"dest": f.name, "type": tp, "help": _help(f, _shown_default(f))}
        if f.metadata.get("choices") is not None:
            kw["choices"] = f.metadata["choices"]
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
        group.add_argument(flag_name(f), **kw)


def config_kwargs(args: argparse.Namespace, cls, skip: tuple[str, ...] = ()) -> dict:
    """The parsed values of ``cls``'s CLI fields, ready for ``cls(**kwargs)``."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if f.name not in skip and f.metadata.get("cli", True) and hasattr(args, f.name)}


__all__ = ["add_config_flags", "config_kwargs", "flag_name"]
