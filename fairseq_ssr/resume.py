"""Checkpoints that survive a kill: fairseq-train's checkpoint copies made atomic, and a restart that steps past an
unreadable ``checkpoint_last.pt``.

fairseq 0.12 writes the first checkpoint of a save atomically (``.tmp``, then rename) but copies it to the others,
``checkpoint_last.pt`` among them, in place: a kill during the copy leaves a truncated ``checkpoint_last.pt``, and
the next start dies in torch's zip reader although an intact interval checkpoint lies beside it. At plugin import:

* ``checkpoint_utils.PathManager.copy`` of a local file writes beside the target, fsyncs, then renames;
* ``checkpoint_utils.load_checkpoint``, when ``checkpoint_last.pt`` is the restore file and cannot be read
  (every zip member's CRC is checked), resumes from the newest intact checkpoint of the save directory, saying so in
  one line, or stops with one line naming the file when there is none.
"""
import logging
import os
import re
import shutil
import zipfile
from typing import Optional

import torch
from fairseq import checkpoint_utils
from omegaconf import open_dict

from .errors import BadInput

logger = logging.getLogger(__name__)


def copy_atomically(src: str, dst: str) -> None:
    """``dst`` becomes a complete copy of ``src`` or stays what it was: a reader never sees half a file."""
    tmp = f"{dst}.tmp"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        shutil.copyfileobj(f, g, 1 << 24)
        g.flush()
        os.fsync(g.fileno())
    os.replace(tmp, dst)


class AtomicCopies:
    """fairseq's PathManager, with ``copy`` between local files done by :func:`copy_atomically`."""

    def __init__(self, manager):
        self.manager = manager

    def __getattr__(self, name):
        return getattr(self.manager, name)

    def copy(self, src_path: str, dst_path: str, overwrite: bool = False, **kwargs) -> bool:
        local = os.path.isfile(src_path) and os.path.isdir(os.path.dirname(os.path.abspath(dst_path)))
        if not local or kwargs:
            return self.manager.copy(src_path, dst_path, overwrite, **kwargs)
        if os.path.exists(dst_path) and not overwrite:
            return False
        copy_atomically(src_path, dst_path)
        return True


def unreadable(path: str) -> Optional[str]:
    """Why torch could not load the checkpoint at ``path``; None when it is intact."""
    try:
        if zipfile.is_zipfile(path):  # torch's format since 1.6: the CRC of every member tells
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return None if bad is None else f"{bad} is corrupt"
        with open(path, "rb") as f:  # the legacy format (or no checkpoint at all): only loading tells
            torch.load(f, map_location="cpu", weights_only=False)
        return None
    except Exception as e:  # noqa: BLE001 (whatever the reader says is the reason)
        return f"{type(e).__name__}: {e}".splitlines()[0]


def newest_intact(save_dir: str, suffix: str, exclude: str) -> Optional[str]:
    """The most recently written checkpoint of ``save_dir`` that can be read, other than ``exclude``."""
    pattern = re.compile(r"checkpoint.*" + re.escape(suffix) + r"\.pt$")
    paths = [os.path.join(save_dir, n) for n in os.listdir(save_dir) if pattern.fullmatch(n)]
    paths = [p for p in paths if os.path.isfile(p) and not os.path.samefile(p, exclude)]
    for p in sorted(paths, key=os.path.getmtime, reverse=True):
        if unreadable(p) is None:
            return p
    return None


def load_checkpoint(cfg, trainer, **kwargs):
    """fairseq's ``load_checkpoint``, falling back from an unreadable ``checkpoint_last.pt`` (module docstring)."""
    last = os.path.join(cfg.save_dir, f"checkpoint_last{trainer.checkpoint_suffix}.pt")
    why = unreadable(last) if cfg.restore_file == "checkpoint_last.pt" and os.path.isfile(last) else None
    if why is None:
        return _fairseq_load_checkpoint(cfg, trainer, **kwargs)
    fallback = newest_intact(cfg.save_dir, trainer.checkpoint_suffix, last)
    if fallback is None:
        raise BadInput(f"{last}: cannot be read ({why}), and no intact checkpoint lies beside it in "
                       f"{cfg.save_dir}; move it away to start from scratch")
    logger.warning(f"{last} cannot be read ({why}): resuming from {fallback}, the newest intact checkpoint")
    restore, finetune = cfg.restore_file, cfg.finetune_from_model
    with open_dict(cfg):  # fairseq appends the suffix to an explicit restore file itself
        cfg.restore_file = os.path.abspath(fallback)[: -len(trainer.checkpoint_suffix + ".pt")] + ".pt"
        cfg.finetune_from_model = None  # a run with a checkpoint_last.pt resumes rather than fine-tunes
    try:
        return _fairseq_load_checkpoint(cfg, trainer, **kwargs)
    finally:
        with open_dict(cfg):
            cfg.restore_file, cfg.finetune_from_model = restore, finetune


# fairseq's own, also when the plugin is imported a second time and finds these in place
_fairseq_load_checkpoint = getattr(checkpoint_utils.load_checkpoint, "wrapped", checkpoint_utils.load_checkpoint)
load_checkpoint.wrapped = _fairseq_load_checkpoint
checkpoint_utils.load_checkpoint = load_checkpoint
if not isinstance(checkpoint_utils.PathManager, AtomicCopies):
    checkpoint_utils.PathManager = AtomicCopies(checkpoint_utils.PathManager)
