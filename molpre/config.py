"""One config system: nested, typed, frozen dataclasses loaded from YAML, ``--set`` and flags.

A config is a (frozen) dataclass whose fields may be other config dataclasses. Values come,
in increasing precedence, from the field defaults, a YAML file, dotted ``a.b=value``
overrides (the value parsed as a YAML scalar) and explicit keyword values (command-line
flags)::

    config = load_config(PretrainConfig, "pipelines/pretrain.yaml", ["train.lr=3e-4"],
                         section="pretrain", **{"train.epochs": 2})

Every key is checked at every depth: an unknown key is a :class:`ConfigError` naming the full
dotted key and the closest valid one; a value of the wrong type names the key and the
expected type. Numeric strings are accepted where a number is expected (PyYAML reads
``lr: 3e-3`` as a string), ``epochs: "ten"`` is not.

A YAML file is a mapping. It may hold one section per command (``finetune:``, ``pretrain:``,
``demo:``, ...); :func:`load_config` with ``section=`` reads that section when present, else
the whole mapping. The command-line side (one option per field, ``--config``, ``--set``) is
:mod:`molpre.cli.options`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Top-level keys a pipeline YAML may hold, one per command that has a config.
SECTIONS = ("pretrain", "finetune", "demo", "study", "workflow", "conformers", "label",
            "predict", "embed", "evaluate")


class ConfigError(ValueError):
    """An invalid config: the message names the file or dotted key and what is expected."""


def setting(default: Any = dataclasses.MISSING, *, help: str = "", flags: tuple[str, ...] = (),
            click_type: Any = None, required: bool = False, metavar: str | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that also describes its command-line option.

    help: the option's help text; flags: e.g. ``("-o", "--output")`` (default: ``--<name>``);
    click_type: a ``click`` type (``click.Path(exists=True)``, ``click.IntRange(min=1)``);
    default: its type otherwise. required: the option must be given on the command line.
    metavar: the value's name in ``--help`` (``DB``, ``K``).
    """
    meta = {"help": help, "flags": tuple(flags), "click_type": click_type, "required": required,
            "metavar": metavar}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# values: type checking and coercion


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def optional_members(tp: Any) -> tuple[bool, list[Any]]:
    """(allows None, the other members) of a union type; (False, [tp]) otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = list(typing.get_args(tp))
        return type(None) in args, [a for a in args if a is not type(None)]
    return False, [tp]


def _scalar(value: Any, tp: type, key: str) -> Any:
    """Coerce one scalar to ``tp`` (int, float, bool, str) or raise ConfigError."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        if isinstance(value, tp):
            return value
    raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r} ({type(value).__name__})")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to the annotated type ``tp``; ConfigError names ``key`` if it cannot be."""
    nullable, members = optional_members(tp)
    if value is None:
        if nullable or tp is Any:
            return None
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got null")
    if tp is Any:
        return value
    if len(members) > 1:
        errors = []
        for member in members:
            try:
                return coerce(value, member, key)
            except ConfigError as err:
                errors.append((member, err))
        sections = [err for member, err in errors if dataclasses.is_dataclass(member)]
        if isinstance(value, Mapping) and sections:  # a section: say which of its keys is wrong
            raise sections[0]
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    tp = members[0]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, prefix=key)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a list ({_type_name(tp)}), got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        items = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        args = typing.get_args(tp)
        item = args[1] if args else Any
        return {str(k): coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if typing.get_origin(tp) is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
    return _scalar(value, tp, key)


# ---------------------------------------------------------------------------------------------
# dataclasses <-> dicts


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of the fields of config dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def unknown_key_error(key: str, valid: Iterable[str], prefix: str = "") -> ConfigError:
    """The error for an unknown ``key``: its full dotted name and the closest valid key."""
    full = f"{prefix}.{key}" if prefix else str(key)
    valid = sorted(valid)
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {(prefix + '.' if prefix else '') + close[0]!r}?"
    else:
        hint = f"valid keys here: {', '.join(valid)}"
    return ConfigError(f"unknown config key {full!r}; {hint}")


def check_keys(keys: Iterable[str], valid: Iterable[str], prefix: str = "") -> None:
    """Raise :func:`unknown_key_error` for the first key of ``keys`` not in ``valid``."""
    valid = list(valid)
    for key in keys:
        if key not in valid:
            raise unknown_key_error(key, valid, prefix)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build config dataclass ``cls`` from a (nested) mapping, checking every key and type.

    Missing keys take the field defaults; ``prefix`` is the dotted path of ``data`` (for
    messages). Errors raised by the class itself (``__post_init__``) become ConfigError.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = prefix or cls.__name__
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    types_ = field_types(cls)
    check_keys(data, types_, prefix)
    values = {name: coerce(value, types_[name], f"{prefix}.{name}" if prefix else name)
              for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        where = f"{prefix}: " if prefix else ""
        raise ConfigError(f"{where}{err}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of a config dataclass (tuples become lists: JSON/YAML friendly)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(config))


# ---------------------------------------------------------------------------------------------
# composition: a section that overrides some fields of another config


def override_of(base: type, names: Iterable[str], *, name: str, doc: str,
                defaults: Mapping[str, Any] | None = None, bases: tuple[type, ...] = ()) -> type:
    """A frozen config dataclass ``name`` whose fields are the fields ``names`` of config
    ``base``, declared once there (type, help, flags, validation), with ``defaults`` in
    place of base's own defaults; ``bases``: frozen dataclasses adding fields of its own.

    The result's :meth:`apply` returns a ``base`` config with those fields set from the
    override, and every instance is checked by ``base()`` (which must build from its
    defaults) with its values: a bad ``lr`` is base's error, named under the section's key::

        TrainSpec = override_of(FinetuneConfig, ("lr", "epochs"), name="TrainSpec",
                                doc="...", defaults={"lr": 5e-3})
        TrainSpec().apply(FinetuneConfig(data="x.db")).lr  # 0.005
    """
    defaults = dict(defaults or {})
    names = tuple(names)
    by_name = {f.name: f for f in dataclasses.fields(base)}
    check_keys(names, by_name, base.__name__)
    check_keys(defaults, names, name)
    types_ = field_types(base)
    fields = [(n, types_[n], _override_field(by_name[n], defaults)) for n in names]

    def apply(self, config: Any, **changes: Any) -> Any:
        """``config`` (a ``base``) with this override's fields (and ``changes``) set."""
        values = {n: copy.deepcopy(getattr(self, n)) for n in names}
        return dataclasses.replace(config, **{**values, **changes})

    def __post_init__(self) -> None:
        for parent in bases:
            if hasattr(parent, "__post_init__"):
                parent.__post_init__(self)
        try:
            self.apply(base())  # base's own validation of the overridden values
        except ConfigError as err:  # a ValueError: from_dict names the section
            raise ValueError(str(err)) from None

    namespace = {"apply": apply, "__post_init__": __post_init__, "__doc__": doc,
                 "OVERRIDES": (base, names)}
    return dataclasses.make_dataclass(name, fields, bases=bases, frozen=True,
                                      namespace=namespace)


def _override_field(field: dataclasses.Field, defaults: Mapping[str, Any]) -> dataclasses.Field:
    """A copy of ``field`` (its metadata: help, flags) with its default from ``defaults``."""
    if field.name in defaults:
        value = defaults[field.name]
        if isinstance(value, (list, dict, set)):
            return dataclasses.field(default_factory=lambda v=value: copy.deepcopy(v),
                                     metadata=field.metadata)
        return dataclasses.field(default=value, metadata=field.metadata)
    if field.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=field.default_factory, metadata=field.metadata)
    return dataclasses.field(default=field.default, metadata=field.metadata)


# ---------------------------------------------------------------------------------------------
# sources: YAML files, dotted overrides


def parse_override(assignment: str) -> tuple[str, Any]:
    """``"a.b=3e-4"`` -> ``("a.b", 0.0003)``: the value is read as a YAML scalar/list."""
    import yaml

    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. train.lr=3e-4")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")) or not _PATH.fullmatch(key):
        raise ConfigError(f"--set {assignment!r}: the key must be a dotted name, e.g. train.lr "
                          "or encoders[0].budgets")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except (yaml.YAMLError, RecursionError) as err:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML "
                          f"({' '.join(str(err).split())})") from None
    return key, value


_PATH = re.compile(r"[^.\[\]]+(\[-?\d+\])*(\.[^.\[\]]+(\[-?\d+\])*)*")


def key_path(key: str) -> list[str | int]:
    """``"encoders[0].budgets"`` -> ``["encoders", 0, "budgets"]``: names and list indices."""
    path: list[str | int] = []
    for part in key.split("."):
        name, *indices = re.split(r"\[", part)
        path.append(name)
        path.extend(int(index.rstrip("]")) for index in indices)
    return path


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``key="a.b"`` in place (sections created as needed).

    ``name[i]`` addresses item ``i`` of a list that is already there (``encoders[0].budgets``);
    an index outside the list is a ConfigError naming the list's length.
    """
    *parents, leaf = key_path(key)
    node: Any = data
    for depth, step in enumerate([*parents, leaf]):
        where = _render(parents[: depth + 1]) if depth < len(parents) else key
        if isinstance(step, int):
            if not isinstance(node, list):
                raise ConfigError(f"{key}: {_render(parents[:depth])} is not a list")
            if not -len(node) <= step < len(node):
                raise ConfigError(f"{key}: {_render(parents[:depth])} has {len(node)} item(s); "
                                  f"index {step} is out of range")
        elif not isinstance(node, dict):
            raise ConfigError(f"{key}: {_render(parents[:depth])} is a value, not a section")
        if depth == len(parents):
            node[step] = value
            return
        if isinstance(step, str):
            node = node.setdefault(step, {})
        else:
            node = node[step]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"{key}: {where} is a value, not a section")


def _render(path: list[str | int]) -> str:
    """``["encoders", 0, "budgets"]`` -> ``"encoders[0].budgets"``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in, section by section."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """The mapping in YAML file ``path`` (its ``section`` when it has one); ConfigError otherwise."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a YAML text file (byte {err.start} is not UTF-8)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not a usable config (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, "
                          f"not a {type(data).__name__}")
    return select_section(data, section, str(path))


def select_section(data: Mapping[str, Any], section: str | None, where: str = "config"
                   ) -> dict[str, Any]:
    """``data[section]`` when the mapping has that section (other keys must be sections too),
    else ``data`` itself."""
    if section is None or section not in data:
        return dict(data)
    others = [k for k in data if k != section and k not in SECTIONS]
    if others:
        raise ConfigError(f"{where}: top-level key {others[0]!r} is not a section "
                          f"(sections: {', '.join(SECTIONS)})")
    body = data[section]
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: section {section!r} must be a mapping of keys")
    return dict(body)


def load_config(cls: type[T], path: str | Path | Mapping[str, Any] | None = None,
                overrides: Iterable[str] = (), *, section: str | None = None,
                **cli_values: Any) -> T:
    """Config ``cls`` from defaults < ``path`` (YAML file or mapping) < ``overrides``
    (``"a.b=value"`` strings) < ``cli_values`` (keyword values; dotted keys allowed through
    ``**{"train.lr": 1e-3}``; ``None`` means "not given").

    Raises ConfigError naming the file or dotted key for any unknown key or wrong type.
    """
    if path is None:
        data: dict[str, Any] = {}
    elif isinstance(path, Mapping):
        data = select_section(path, section)
    else:
        data = read_yaml(path, section)
    data = copy.deepcopy(data)
    for assignment in overrides:
        set_dotted(data, *parse_override(assignment))
    for key, value in cli_values.items():
        if value is not None:
            set_dotted(data, key, value)
    try:
        return from_dict(cls, data)
    except ConfigError as err:
        if isinstance(path, (str, Path)) and _fails_alone(cls, path, section, str(err)):
            raise ConfigError(f"{path}: {err}") from None
        raise


def _fails_alone(cls: type, path: str | Path, section: str | None, message: str) -> bool:
    """Whether the file alone gives the same error (then the message names the file)."""
    try:
        from_dict(cls, read_yaml(path, section))
    except ConfigError as err:
        return str(err) == message
    return False
