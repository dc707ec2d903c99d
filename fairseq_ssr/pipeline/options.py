"""Command-line flags from a stage's config dataclass, so that the dataclass is the only home of each default.

Every field of a stage config carries ``metadata={"help": ...}`` (and ``"choices"`` where it has a fixed set);
:func:`add_config_args` turns the fields into fairseq-style ``--kebab-case`` flags whose defaults and help texts
come from the dataclass, :func:`config_from_args` builds the config back from the parsed flags, and
:func:`stage_defaults` lists every stage's defaults for the shell recipes (``preprocess/defaults.py``).
"""
import argparse
import dataclasses
from typing import Dict, Iterable, Optional, Type


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_args(parser: argparse.ArgumentParser, cls: Type, skip: Iterable[str] = ()) -> None:
    """One flag per field of ``cls`` (bool fields become ``--name`` switches that set True)."""
    skip = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip or "help" not in f.metadata:
            continue
        text = f.metadata["help"].replace("%", "%%")  # argparse formats help strings with %
        kwargs = {"help": f"{text} (default: {f.default})", "default": f.default}
        if f.type in (bool, "bool"):
            if f.default:
                raise TypeError(f"{cls.__name__}.{f.name}: a bool flag must default to False")
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            kwargs["metavar"] = f.metadata.get("metavar", f.name.upper())
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag(f.name), **kwargs)


def config_from_args(args: argparse.Namespace, cls: Type, **overrides):
    """The config whose fields are the parsed flags of the same names (plus ``overrides``)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


def stage_defaults(configs: Dict[str, Type], prefix: Optional[str] = None) -> Dict[str, object]:
    """``{STAGE_FIELD: default}`` for every plain field of every stage config (nested configs skipped)."""
    out = {}
    for stage, cls in configs.items():
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                out[f"{prefix or ''}{stage}_{f.name}".upper()] = f.default
    return out
