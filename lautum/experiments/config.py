"""Experiment configurations: a dataclass per experiment, profiles as named presets.

``build_config(Config, "quick", seeds=(0, 1))`` starts from the dataclass defaults,
applies the profile's preset, then the overrides. Unknown keys and values of the
wrong type are errors that name what was expected, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

__all__ = ["build_config", "parse_value", "ConfigError", "config_dict"]


class ConfigError(ValueError):
    """An unknown key, a wrong type or an unknown profile in an experiment configuration."""


def _accepts(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_accepts(args[0], v) for v in value)
        return len(args) == len(value) and all(_accepts(a, v) for a, v in zip(args, value, strict=True))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def parse_value(text: str, tp: Any) -> Any:
    """Parse a command-line string into a value of type ``tp``.

    Tuples are comma-separated; ``none`` gives ``None`` where the type allows it.

    >>> parse_value("5,20", tuple[int, ...])
    (5, 20)
    >>> parse_value("1e-3", float)
    0.001
    >>> parse_value("none", int | None) is None
    True
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return parse_value(text, a)
            except ValueError:
                continue
        raise ValueError(f"{text!r} is none of {args}")
    if origin is tuple:
        (elem, *_rest) = typing.get_args(tp)
        return tuple(parse_value(t.strip(), elem) for t in text.split(",") if t.strip())
    if tp is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{text!r} is not a boolean (true/false)")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise ValueError(f"cannot parse {text!r} as {tp}")


def build_config(cls: type, profile: str = "quick", overrides: dict[str, Any] | None = None,
                 profiles: dict[str, dict[str, Any]] | None = None):
    """Build ``cls`` from its defaults, the named profile and ``overrides`` (validated).

    String overrides (from the command line) are parsed to the field's type.
    """
    profiles = profiles if profiles is not None else cls.PROFILES
    if profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r}; this experiment has {sorted(profiles)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values = dict(profiles[profile])
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ConfigError(
                f"unknown setting {key!r} for {cls.__module__}.{cls.__name__}; "
                f"valid settings are: {', '.join(sorted(fields))}"
            )
        if isinstance(value, str) and hints[key] is not str:
            try:
                value = parse_value(value, hints[key])
            except ValueError as err:
                raise ConfigError(f"setting {key}={value!r}: expected {hints[key]} ({err})") from err
        if isinstance(value, list):
            value = tuple(value)
        values[key] = value
    for key, value in values.items():
        if not _accepts(hints[key], value):
            raise ConfigError(f"setting {key}={value!r} has the wrong type: expected {hints[key]}")
    return cls(profile=profile, **{k: v for k, v in values.items() if k != "profile"})


def config_dict(config: Any) -> dict[str, Any]:
    """A configuration as a plain dict (tuples kept as lists for JSON)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
