"""Experiment configurations: a dataclass per experiment, profiles as named presets.

``build_config(Config, "quick", seeds=(0, 1))`` starts from the dataclass defaults,
applies the profile's preset, then the overrides. Unknown keys, values of the
wrong type and values out of range (:data:`LIMITS`: an empty grid, ``k = 0``, a
negative learning rate, a NaN) are errors that name what was expected, raised
before anything runs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import types
import typing
from typing import Any

__all__ = ["build_config", "parse_value", "ConfigError", "config_dict", "LIMITS", "GRID_AXES", "check_limits"]


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


#: The grid axes: an empty one would make a sweep of nothing.
GRID_AXES = ("seeds", "ks", "methods", "targets", "alphas")

#: Field-name patterns and the smallest value allowed (each element of a tuple, ``None`` exempt).
#: The first pattern that matches a field decides. Learning rates must be positive.
LIMITS: tuple[tuple[str, float, str], ...] = (
    ("seeds", 0, "seeds are non-negative integers"),
    ("seed", 0, "a seed is a non-negative integer"),
    ("threads", 0, "0 leaves torch's thread count alone; otherwise the number of CPU threads"),
    ("*_lr", math.ulp(0.0), "a learning rate is positive"),
    ("lr", math.ulp(0.0), "a learning rate is positive"),
    ("lam_*", 0, "a regularizer weight is non-negative"),
    ("alphas", 0, "a regularization strength is non-negative"),
    ("beta", 0, "a regularization strength is non-negative"),
    ("ks", 1, "k is the number of labelled images per class, at least 1"),
    ("*_k", 1, "k is the number of labelled images per class, at least 1"),
    ("*_epochs", 1, "at least one epoch"),
    ("*_steps", 1, "at least one step"),
    ("*batch_size", 1, "a batch holds at least one example"),
    ("n_*", 1, "a set size is at least 1 (none: the whole set)"),
    ("width", 1, "a layer has at least one channel"),
    ("feature_dim", 1, "a layer has at least one unit"),
    ("image_size", 1, "images have at least one pixel"),
    ("channels", 1, "images have at least one channel"),
    ("fisher_samples", 1, "the Fisher estimate needs at least one sample"),
    ("log_every", 1, "log every N >= 1 steps"),
    ("te_pool", 1, "the pool holds at least one image (none: the whole pool)"),
)


def check_limits(config: Any, limits: dict[str, float] | None = None) -> None:
    """Raise :class:`ConfigError` for an empty grid axis, a non-finite float or a value below its limit.

    ``limits`` overrides :data:`LIMITS` for named fields (e.g. ``{"ks": 0}`` where
    ``k = 0`` means "the data set's own split").

    >>> from dataclasses import make_dataclass
    >>> C = make_dataclass("C", [("ks", tuple), ("finetune_lr", float)])
    >>> check_limits(C((5,), 0.01))
    >>> check_limits(C((0,), 0.01))
    Traceback (most recent call last):
    ...
    lautum.experiments.config.ConfigError: setting ks=(0,): 0 is below 1 (k is the number of labelled images per class, at least 1)
    """
    limits = limits or {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if f.name in GRID_AXES and not values:
            raise ConfigError(f"setting {f.name} is empty: the sweep would run nothing; give at least one value "
                              f"(e.g. --set {f.name}=...)")
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"setting {f.name}={value!r}: {v} is not a finite number")
        rule = next(((lo, why) for pat, lo, why in LIMITS if fnmatch.fnmatchcase(f.name, pat)), None)
        if f.name in limits:
            rule = (limits[f.name], rule[1] if rule else "")
        if rule is None:
            continue
        lo, why = rule
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < lo:
                bound = "0 (exclusive)" if lo == math.ulp(0.0) else lo
                raise ConfigError(f"setting {f.name}={value!r}: {v} is below {bound} ({why})")


def build_config(cls: type, profile: str = "quick", overrides: dict[str, Any] | None = None,
                 profiles: dict[str, dict[str, Any]] | None = None, limits: dict[str, float] | None = None):
    """Build ``cls`` from its defaults, the named profile and ``overrides`` (validated).

    String overrides (from the command line) are parsed to the field's type; the
    result is checked by :func:`check_limits` (``limits`` overrides its rules).
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
    config = cls(profile=profile, **{k: v for k, v in values.items() if k != "profile"})
    check_limits(config, limits)
    if hasattr(config, "device"):
        check_device(config.device)
    return config


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` unless ``device`` is ``auto`` or a device torch knows and this machine has."""
    if device == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"setting device={device!r} is not a device torch knows ({err}); use auto, cpu or "
                          "cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"setting device={device!r}: torch sees no CUDA device on this machine; use device=auto "
                          "(CUDA when present, else the CPU) or device=cpu")


def config_dict(config: Any) -> dict[str, Any]:
    """A configuration as a plain dict (tuples kept as lists for JSON)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
