"""What importing the plugin checks and quiets in the environment it lands in (run once, from ``__init__``)."""
import importlib.util
import logging
import sys
import warnings
from importlib.metadata import version


def import_fairseq_quietly():
    """Import fairseq without its import-time log noise.

    fairseq's import calls ``logging.basicConfig(level=DEBUG)`` (models/wav2vec/wav2vec2_classification.py) and then
    logs "Please install tensorboardX" at INFO, so every command of ours would print it. A handler on the root logger
    for the length of the import turns those ``basicConfig`` calls into no-ops; it is removed afterwards, so a
    program that configures logging itself (fairseq-train does, before importing fairseq) is left as it was.
    Warnings raised by that import (torch 2.14 deprecates the ``torch.jit.script`` fairseq uses) are dropped too."""
    root = logging.getLogger()
    if root.handlers or "fairseq" in sys.modules:
        return
    quiet = logging.NullHandler()
    root.addHandler(quiet)
    try:
        with warnings.catch_warnings():  # and newer torch's deprecation notices for fairseq's module-level jit code
            warnings.simplefilter("ignore")
            import fairseq.models  # noqa: F401  (the import that logs)
            import fairseq.tasks  # noqa: F401
    finally:
        root.removeHandler(quiet)


def check_torchaudio():
    """``ve-fairseq`` requires torchaudio, and pip picks one built for another torch (or for CUDA next to a CPU torch).
    fairseq never imports it for text, but transformers does for every model, so ``T5ForConditionalGeneration``
    dies on it. Say once, in one line, what to run."""
    if importlib.util.find_spec("torchaudio") is None:
        return
    try:
        import torchaudio  # noqa: F401
    except Exception as e:  # OSError from the extension's loader, ImportError, RuntimeError (version checks)
        import torch

        sys.stderr.write(
            f"fairseq-ssr: torchaudio {version('torchaudio')} cannot load next to torch {torch.__version__} "
            f"({type(e).__name__}) and breaks transformers' models; fairseq-ssr does not use it: "
            "run `pip uninstall -y torchaudio`\n"
        )
