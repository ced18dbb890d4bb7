"""Command-line options generated from config dataclasses: each option is declared once.

``@config_options(FinetuneConfig, ["data", "lr", ...], section="finetune")`` adds
``--config FILE.yaml``, ``--set KEY=VALUE`` (repeatable) and one option per listed field (its
help, flags and click type come from the field's :func:`molpre.config.setting` metadata),
loads the config with precedence defaults < file < ``--set`` < explicit flags, and calls the
command with ``config=<the loaded dataclass>``. Config errors end as one usage line (exit 2).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Sequence
from typing import Any

import click

from molpre.config import ConfigError, field_types, load_config, optional_members

_SCALARS = {int: int, float: float, str: str}


def _field(cls: type, path: str) -> tuple[dataclasses.Field, Any]:
    """The dataclass field and its type at dotted ``path`` of config class ``cls``."""
    owner = cls
    parts = path.split(".")
    for depth, name in enumerate(parts):
        types_ = field_types(owner)
        if name not in types_:
            raise KeyError(f"{cls.__name__} has no field {'.'.join(parts[: depth + 1])!r}")
        field = next(f for f in dataclasses.fields(owner) if f.name == name)
        tp = types_[name]
        if depth < len(parts) - 1:
            owner = optional_members(tp)[1][0]
    return field, tp


def _default_text(field: dataclasses.Field) -> str:
    if field.metadata.get("required"):
        return ""
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return ""
    if value is None or value == "" or dataclasses.is_dataclass(value):
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f" [default: {value}]"


def field_option(cls: type, path: str) -> Callable:
    """The ``click.option`` for dotted field ``path`` of ``cls`` (value None when not given)."""
    field, tp = _field(cls, path)
    meta = field.metadata
    leaf = path.rsplit(".", 1)[-1].replace("_", "-")
    flags = list(meta.get("flags") or (f"--{leaf}",))
    inner = optional_members(tp)[1][0]
    kwargs: dict[str, Any] = {"default": None, "required": bool(meta.get("required")),
                              "help": (meta.get("help") or "") + _default_text(field)}
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    if inner is bool:
        long = next(f for f in flags if f.startswith("--"))
        pair = long if "/" in long else f"{long}/--no-{long[2:]}"  # or as the field says
        flags = [f for f in flags if f != long] + [pair]
    elif meta.get("click_type") is not None:
        kwargs["type"] = meta["click_type"]
    elif typing.get_origin(inner) is list:
        kwargs["multiple"] = True
        kwargs["type"] = _SCALARS.get(typing.get_args(inner)[0], str)
    else:
        kwargs["type"] = _SCALARS.get(inner, str)
    return click.option(*flags, param_name(path), **kwargs)


def param_name(path: str) -> str:
    """The Python parameter name click uses for field ``path``."""
    return "cfg__" + path.replace(".", "__")


def remember_config_file(path: str | None) -> None:
    """Note the command's config file (an input the output guard protects)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and path:
        ctx.meta["molpre.config_file"] = path


def config_file() -> str | None:
    """The config file of the running command (``--config`` or the CONFIG argument)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("molpre.config_file") if ctx is not None else None


def config_options(cls: type, fields: Sequence[str], *, section: str | None = None,
                   config_argument: bool = False, set_example: str = "KEY=VALUE") -> Callable:
    """Decorator (below ``@click.command``) adding ``--config``, ``--set`` and field options.

    The command receives ``config=`` (an instance of ``cls``) plus its other parameters.
    ``section``: the YAML section read when the file has one; ``config_argument``: also accept
    the YAML file as an optional positional argument; ``set_example``: shown in ``--set``'s help.
    """
    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            config_file = kwargs.pop("config_file", None)
            positional = kwargs.pop("config_arg", None)
            if config_file and positional:
                raise click.UsageError("give the config file once (CONFIG or --config)")
            sets = kwargs.pop("config_sets", ())
            remember_config_file(config_file or positional)
            values = {}
            for path in fields:
                value = kwargs.pop(param_name(path))
                values[path] = None if value == () else (list(value) if isinstance(value, tuple) else value)
            try:
                config = load_config(cls, config_file or positional, sets, section=section,
                                     **values)
            except ConfigError as err:
                raise click.UsageError(str(err)) from None
            return func(config=config, **kwargs)

        for path in reversed(fields):
            wrapper = field_option(cls, path)(wrapper)
        article = "an" if section and section[0] in "aeiou" else "a"
        where = f"{article} {section}: section or " if section else ""
        wrapper = click.option(
            "--set", "config_sets", multiple=True, metavar="KEY=VALUE",
            help="Override any config key by dotted path, value read as YAML "
                 f"(repeatable), e.g. --set {set_example}; a list item as "
                 "name[i].key. Flags override --set.")(wrapper)
        wrapper = click.option(
            "--config", "config_file", type=click.Path(exists=True, dir_okay=False),
            help=f"YAML config ({where}top-level keys); --set and flags override it.")(wrapper)
        if config_argument:
            wrapper = click.argument("config_arg", metavar="[CONFIG]", required=False,
                                     type=click.Path(exists=True, dir_okay=False))(wrapper)
        return wrapper

    return decorator
