"""absl flags derived from frozen config dataclasses: options written once.

A config dataclass is the one definition of a run's options: its field
types, defaults and the `Attributes:` section of its docstring become the
flags, their parsers, defaults and `--help` text.

Field annotation -> flag:

- `int`, `float`, `str` -> `DEFINE_integer`, `DEFINE_float`, `DEFINE_string`;
  `str` with `choices` metadata -> `DEFINE_enum`.
- `bool` -> `DEFINE_bool` (`--x`, `--nox`).
- `bool | None` -> enum `auto|false|true`, `auto` meaning None.
- `tuple[int, ...]` -> comma list, e.g. `--dilations=1,4,1,4`.
- `int | None` (float, str alike) -> the plain flag; None only as default.
- a nested config dataclass -> its fields, flattened to plain flag names.

Enum choices come from the field's metadata:

    method: str = dataclasses.field(
        default="gumbel", metadata={"choices": ("gumbel", "rl")}
    )

Nested dataclasses are flattened: a `trainer: TrainerConfig` field's
`epochs` is still `--epochs`, so flagfiles do not change when fields move
between config classes; two fields that would share a flag name are an
error. A required field (no default) gets a flag with default None, and
`config_from_flags` raises `FlagError` naming it when it is missing.

Config dataclasses validate their values in `__post_init__` with the
`check_*` helpers below, which raise `ConfigError` (a `ValueError` and a
`uaf_tf.errors.UserError`) naming the field; `config_from_flags` reports
it as the flag: `--learning_rate=-1.0: must be > 0 and finite`.

Example:

    define_config_flags(PretrainConfig, flag_values)   # in define_flags()
    flag_values(argv)
    config = config_from_flags(PretrainConfig, flag_values)

Only the flags given on the command line (or in a flagfile) override; every
other field keeps the dataclass default, or the value in `defaults` (e.g. a
run's `config.json` read as a preset, see `flatten_config_dict`).
"""

import dataclasses
import inspect
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from absl import app
from absl import flags

from uaf_tf import errors

# Flags defined through this module belong to the module that called it, so
# they are key flags of the launch script and show in its `--help`.
flags.disclaim_key_flags()

# `dataclasses.field(metadata={CHOICES: (...)})` makes an enum flag.
CHOICES = "choices"
# Spelling of None for `bool | None` fields (e.g. `jit_compile`).
AUTO = "auto"
_BOOL_OR_NONE = {AUTO: None, "false": False, "true": True}


@dataclasses.dataclass(frozen=True)
class _FlagSpec:
    """One leaf field of a (possibly nested) config dataclass."""

    name: str
    path: tuple[str, ...]  # Attribute path from the root config.
    kind: str  # "int", "float", "str", "bool", "bool_or_none", "int_tuple"
    default: Any  # Config value; _MISSING for a required field.
    help: str
    choices: tuple[str, ...] | None


_MISSING = dataclasses.MISSING


# === Validation of config values ===


class FlagError(errors.UserError, app.UsageError):
    """A flag the command cannot run with: missing, or an invalid value.

    A `UserError`, so the command prints the one line and exits 2 (and an
    `app.UsageError` for callers that catch those).
    """


class ConfigError(errors.UserError, ValueError):
    """An invalid config value: one line naming the field and the value.

    `str(error)` is the Python API's form, `` `learning_rate` must be > 0
    and finite. Received: learning_rate=-1.0`` (or `data_dir='/x': no such
    directory` for a reason that is not a requirement); `flag_message()` is
    the command line's, `--learning_rate=-1.0: must be > 0 and finite`.
    Field names are flag names (`define_config_flags`), nested fields
    included.

    Args:
        field: the field (= flag) name.
        value: the value received.
        requirement: what the value must be, e.g. `"> 0 and finite"`, or,
            with `is_requirement=False`, what is wrong with it.
        is_requirement: whether `requirement` completes "must be".
    """

    def __init__(
        self,
        field: str,
        value: Any,
        requirement: str,
        *,
        is_requirement: bool = True,
    ):
        self.field = field
        self.value = value
        self.reason = (
            f"must be {requirement}" if is_requirement else requirement
        )
        if is_requirement:
            message = f"`{field}` {self.reason}. Received: {field}={value!r}"
        else:
            message = f"{field}={value!r}: {self.reason}"
        super().__init__(message)

    def flag_message(self) -> str:
        """The message in terms of the flag: `--field=value: reason`."""
        value = self.value
        if isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = str(value).lower()
        return f"--{self.field}={value}: {self.reason}"


def check_positive(config, *names: str) -> None:
    """Raises `ConfigError` unless each field is a finite number > 0."""
    for name in names:
        value = getattr(config, name)
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            raise ConfigError(name, value, "> 0 and finite")


def check_non_negative(config, *names: str) -> None:
    """Raises `ConfigError` unless each field is a finite number >= 0."""
    for name in names:
        value = getattr(config, name)
        if not (_is_number(value) and math.isfinite(value) and value >= 0):
            raise ConfigError(name, value, ">= 0 and finite")


def check_at_least(config, minimum: int, *names: str) -> None:
    """Raises `ConfigError` unless each field is an integer >= `minimum`."""
    for name in names:
        value = getattr(config, name)
        if not (_is_integer(value) and value >= minimum):
            raise ConfigError(name, value, f"an integer >= {minimum}")


def check_int_tuple(config, name: str, minimum: int) -> None:
    """Raises `ConfigError` unless the field is a non-empty sequence of
    integers >= `minimum`."""
    value = getattr(config, name)
    if not (
        isinstance(value, (tuple, list))
        and value
        and all(_is_integer(v) and v >= minimum for v in value)
    ):
        raise ConfigError(name, value, f"one or more integers >= {minimum}")


def check_fraction(config, *names: str) -> None:
    """Raises `ConfigError` unless each field is in (0, 1]."""
    for name in names:
        value = getattr(config, name)
        if not (_is_number(value) and 0 < value <= 1):
            raise ConfigError(name, value, "in (0, 1]")


def check_choice(config, name: str, allowed) -> None:
    """Raises `ConfigError` unless the field is one of `allowed`."""
    value = getattr(config, name)
    if value not in allowed:
        raise ConfigError(name, value, f"one of {tuple(allowed)}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def attribute_docs(config_cls: type) -> dict[str, str]:
    """Field descriptions from the `Attributes:` section of a docstring.

    Continuation lines (indented deeper than the `name:` line) are joined
    with spaces. A dataclass's base classes describe the fields they
    declare; a subclass's own description of a field wins.

    Returns:
        `{field name: description}`.
    """
    docs = {}
    for cls in reversed(config_cls.__mro__):
        if cls is not object and "__doc__" in vars(cls):
            docs.update(_own_attribute_docs(cls.__doc__))
    return docs


def _own_attribute_docs(docstring: str | None) -> dict[str, str]:
    """`attribute_docs` of one docstring."""
    doc = inspect.cleandoc(docstring or "")
    docs, current, base_indent, in_section = {}, None, None, False
    for line in doc.splitlines():
        if not in_section:
            in_section = line.strip() == "Attributes:"
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # The next section ("Example:") ends it.
            break
        base_indent = indent if base_indent is None else base_indent
        match = re.match(r"(\w+)(?: \([^)]*\))?: ?(.*)", line.strip())
        if indent == base_indent and match:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current is not None:
            docs[current] = f"{docs[current]} {line.strip()}".strip()
    return docs


def _kind(annotation, field_name: str) -> str:
    """Maps a field annotation to a flag kind."""
    if annotation in (int, float, str, bool):
        return annotation.__name__
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple and args == (int, Ellipsis):
        return "int_tuple"
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)] or [None]
        if inner is bool:
            return "bool_or_none"
        if inner in (int, float, str):
            return inner.__name__
    raise TypeError(
        f"No flag type for field `{field_name}` annotated {annotation!r}; "
        "supported: int, float, str, bool, tuple[int, ...], X | None and "
        "nested config dataclasses."
    )


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not _MISSING:
        return field.default
    if field.default_factory is not _MISSING:
        return field.default_factory()
    return _MISSING


def flag_specs(config_cls: type) -> list[_FlagSpec]:
    """The flags of `config_cls`, nested dataclasses flattened, in order.

    Raises:
        ValueError: two fields map to one flag name, or a field has no
            entry in its class's `Attributes:` docstring section.
        TypeError: a field type has no flag type.
    """
    specs: list[_FlagSpec] = []

    def visit(cls, path, defaults):
        hints = typing.get_type_hints(cls)
        docs = attribute_docs(cls)
        for field in dataclasses.fields(cls):
            annotation = hints[field.name]
            default = (
                _field_default(field)
                if defaults is None
                else getattr(defaults, field.name)
            )
            if dataclasses.is_dataclass(annotation):
                nested_defaults = None if default is _MISSING else default
                visit(annotation, (*path, field.name), nested_defaults)
                continue
            if field.name not in docs:
                raise ValueError(
                    f"`{cls.__name__}.{field.name}` is not described in the "
                    "`Attributes:` section of its docstring (the flag's "
                    "help text)."
                )
            choices = field.metadata.get(CHOICES)
            specs.append(
                _FlagSpec(
                    name=field.name,
                    path=(*path, field.name),
                    kind=_kind(annotation, f"{cls.__name__}.{field.name}"),
                    default=default,
                    help=docs[field.name],
                    choices=tuple(choices) if choices else None,
                )
            )

    visit(config_cls, (), None)
    seen: dict[str, _FlagSpec] = {}
    for spec in specs:
        if spec.name in seen:
            raise ValueError(
                f"Fields `{'.'.join(seen[spec.name].path)}` and "
                f"`{'.'.join(spec.path)}` of {config_cls.__name__} would "
                f"both be the flag --{spec.name}. Rename one of them."
            )
        seen[spec.name] = spec
    return specs


class _IntTupleParser(flags.ArgumentParser):
    """`"1,4,1,4"` -> `(1, 4, 1, 4)`."""

    def parse(self, argument):
        if isinstance(argument, (tuple, list)):
            return tuple(int(x) for x in argument)
        try:
            return tuple(int(x) for x in argument.split(",") if x.strip())
        except ValueError:
            raise ValueError(
                f"expected comma-separated integers, got {argument!r}"
            ) from None

    syntactic_help = "a comma separated list of integers"

    def flag_type(self):
        return self.syntactic_help


def define_config_flags(
    config_cls: type, flag_values: flags.FlagValues = flags.FLAGS
) -> tuple[str, ...]:
    """Defines one flag per (nested) field of `config_cls`.

    The flags count as defined by the module calling this function (they
    are its key flags, listed by its `--help`).

    Args:
        config_cls: a dataclass whose docstring has an `Attributes:` section
            describing every field.
        flag_values: the `FlagValues` to define them on.

    Returns:
        The flag names defined, in field order.
    """
    fv = {"flag_values": flag_values}
    specs = flag_specs(config_cls)
    for spec in specs:
        default = None if spec.default is _MISSING else spec.default
        name, help_text = spec.name, _sentence(spec.help)
        if spec.choices:
            flags.DEFINE_enum(
                name, default, list(spec.choices), help_text, **fv
            )
        elif spec.kind == "bool_or_none":
            default = next(k for k, v in _BOOL_OR_NONE.items() if v is default)
            help_text += f" ({AUTO}: None)"
            flags.DEFINE_enum(
                name, default, list(_BOOL_OR_NONE), help_text, **fv
            )
        elif spec.kind == "int_tuple":
            flags.DEFINE(
                _IntTupleParser(),
                name,
                None if default is None else ",".join(map(str, default)),
                help_text,
                serializer=flags.ListSerializer(","),
                **fv,
            )
        else:
            define = {
                "int": flags.DEFINE_integer,
                "float": flags.DEFINE_float,
                "str": flags.DEFINE_string,
                "bool": flags.DEFINE_bool,
            }[spec.kind]
            define(name, default, help_text, **fv)
    return tuple(spec.name for spec in specs)


def _sentence(text: str) -> str:
    """Capitalises a description's first word, unless it is a symbol (`k`)."""
    first = text.split(" ", 1)[0].rstrip(",")
    if len(first) > 1 and first.isalpha() and first.islower():
        return text[0].upper() + text[1:]
    return text


def _to_config_value(spec: _FlagSpec, value: Any) -> Any:
    """A flag value (or a JSON value of a preset) as the field's value."""
    if spec.kind == "bool_or_none" and isinstance(value, str):
        return _BOOL_OR_NONE[value]
    if spec.kind == "int_tuple" and value is not None:
        return tuple(int(x) for x in value)
    return value


def flatten_config_dict(
    config_cls: type,
    values: Mapping[str, Any],
    *,
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A config as a dict (e.g. a `config.json`) -> `{flag name: value}`.

    Nested dataclass fields may be nested dicts (`dataclasses.asdict`) or
    already flat. JSON lists become tuples where the field is a tuple.

    Args:
        config_cls: the config dataclass `values` describes.
        values: `{field: value}`, nested or flat.
        ignore: top-level keys that are not config fields (run metadata
            such as `"task"`) and are dropped.

    Raises:
        KeyError: a key is neither a field nor in `ignore`; the message
            names the key.
    """
    specs = {spec.name: spec for spec in flag_specs(config_cls)}
    nested = {spec.path[0] for spec in specs.values() if len(spec.path) > 1}
    flat: dict[str, Any] = {}

    def visit(mapping, where):
        for key, value in mapping.items():
            if not where and key in ignore:
                continue
            if key in nested and isinstance(value, Mapping):
                visit(value, (*where, key))
            elif key in specs:
                flat[key] = _to_config_value(specs[key], value)
            else:
                raise KeyError(
                    f"`{'.'.join((*where, key))}` is not a field of "
                    f"{config_cls.__name__}."
                )

    visit(values, ())
    return flat


def config_from_flags(
    config_cls: type,
    flag_values: flags.FlagValues = flags.FLAGS,
    *,
    defaults: Mapping[str, Any] | None = None,
    config_errors: bool = False,
):
    """Builds `config_cls` from parsed flags.

    Each field takes, in order of precedence: the flag if it was given (on
    the command line or in a flagfile), `defaults[flag name]`, the dataclass
    default (that of the enclosing field's default instance for nested
    fields).

    Args:
        config_cls: the dataclass passed to `define_config_flags`.
        flag_values: parsed `FlagValues`.
        defaults: `{flag name: config value}`, e.g. from
            `flatten_config_dict`.

    Returns:
        A `config_cls` instance (its `__post_init__` validation applies).

    Raises:
        FlagError: a required field was not given, or a value is invalid
            (the config's `ConfigError`); the message names the flag.
        ConfigError: with `config_errors=True` (the Python API), an invalid
            value raises the config's own error, worded for Python callers.
    """
    defaults = dict(defaults or {})
    specs = flag_specs(config_cls)
    values: dict[tuple[str, ...], Any] = {}
    for spec in specs:
        flag = flag_values[spec.name]
        if flag.present:
            values[spec.path] = _to_config_value(spec, flag.value)
        elif spec.name in defaults:
            values[spec.path] = defaults[spec.name]
        elif spec.default is _MISSING:
            raise FlagError(f"--{spec.name} is required.")
    try:
        return _build(config_cls, (), values, None)
    except ConfigError as error:
        if config_errors:
            raise
        raise FlagError(error.flag_message()) from None


def replace_fields(config, values: Mapping[str, Any]):
    """`config` with the fields named in `values` (by flag name) replaced.

    Nested fields are found by their flag name (`epochs`, not
    `training.epochs`); the config's validation runs again.

    Raises:
        KeyError: a name is not a field of the config.
        ConfigError: a new value is invalid.
    """
    specs = {spec.name: spec for spec in flag_specs(type(config))}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise KeyError(f"{unknown} are not fields of {type(config).__name__}.")
    by_path = {
        specs[name].path: _to_config_value(specs[name], value)
        for name, value in values.items()
    }
    return _build(type(config), (), by_path, config)


def _build(cls, path, values, base):
    """`cls` with `values` (keyed by field path) set on `base`'s values.

    `base` is the default instance of a nested field (None: the class
    defaults apply).
    """
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        field_path = (*path, field.name)
        annotation = hints[field.name]
        if dataclasses.is_dataclass(annotation):
            nested_base = (
                getattr(base, field.name)
                if base is not None
                else _field_default(field)
            )
            nested_base = None if nested_base is _MISSING else nested_base
            touched = any(p[: len(field_path)] == field_path for p in values)
            if touched or nested_base is None:
                kwargs[field.name] = _build(
                    annotation, field_path, values, nested_base
                )
        elif field_path in values:
            kwargs[field.name] = values[field_path]
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    return cls(**kwargs)
