"""One home per setting: the stage configs' defaults are what every CLI, the pipeline and the recipe show in --help.

Each command is run for real (``--help``) and its printed default compared with the dataclass field, so moving a
default to a second place, or a CLI that stops reading it from the config, fails here.
"""
import functools
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import REPO

from fairseq_ssr.pipeline.binarize import BinarizeConfig
from fairseq_ssr.pipeline.masking import MaskConfig
from fairseq_ssr.pipeline.sampler import SamplerConfig

ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def field_default(cls, name):
    return next(f.default for f in fields(cls) if f.name == name)


@functools.lru_cache(maxsize=None)
def help_entries(command):
    """COMMAND's --help as {flag: its help text on one line}."""
    text = subprocess.run([*command, "--help"], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120)
    assert text.returncode == 0, text.stderr[-2000:]
    entries, flag = {}, None
    for line in text.stdout.splitlines():
        start = re.match(r"^  (--[a-z0-9-]+)", line)
        if start:
            flag = start.group(1)
            entries[flag] = line[start.end():]
        elif flag and line.startswith("    "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


def cli_default(command, flag):
    """The ``(default: X)`` argparse prints for --FLAG in COMMAND's --help."""
    entry = help_entries(tuple(command)).get(flag)
    assert entry, f"{flag} not in {' '.join(command)} --help"
    return re.search(r"\(default: ([^)]*)\)$", " ".join(entry.split())).group(1)


@functools.lru_cache(maxsize=None)
def recipe_help():
    text = subprocess.run(["bash", "recipes/ssr_pretrain.sh", "--help"], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=120)
    return text.stdout + text.stderr


def recipe_default(flag):
    """The ``[X]`` ssr_pretrain.sh --help prints for --FLAG (lib.sh's option help)."""
    found = re.search(rf"^  {re.escape(flag)} \(\w+\) .*\[([^\]]*)\]$", recipe_help(), re.M)
    assert found, f"{flag} not in ssr_pretrain.sh --help"
    return found.group(1)


PY = sys.executable
SETTINGS = {  # setting -> (its home, the commands that show it, the recipe's flag)
    "top_p": (SamplerConfig, [[PY, "preprocess/generate_spans.py"], [PY, "preprocess/pipeline.py"]], "--top-p"),
    "top_k": (SamplerConfig, [[PY, "preprocess/generate_spans.py"], [PY, "preprocess/pipeline.py"]], "--top-k"),
    "mask_ratio": (MaskConfig, [[PY, "preprocess/mask_spans.py"], [PY, "preprocess/pipeline.py"]], "--mask-ratio"),
    "poisson_lambda": (MaskConfig, [[PY, "preprocess/mask_spans.py"], [PY, "preprocess/pipeline.py"]],
                       "--poisson-lambda"),
    "groups": (BinarizeConfig, [[PY, "preprocess/binarize.py"], [PY, "preprocess/pipeline.py"]], "--num-groups"),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_command_shows_the_stage_configs_default(name):
    home, commands, recipe_flag = SETTINGS[name]
    expected = field_default(home, name)
    flag = "--" + name.replace("_", "-")
    for command in commands:
        assert type(expected)(cli_default(command, flag)) == expected, (command, flag)
    assert type(expected)(recipe_default(recipe_flag)) == expected
