"""fairseq-ssr: Sequence Span Rewriting (Zhou et al., EMNLP 2021) for T5 as a fairseq ``--user-dir`` plugin.

Importing the package applies the compatibility fixes once, then registers the model, task and criterion.
fairseq imports it for ``--user-dir`` in every entry point (train, generate, interactive, preprocess, DDP workers).
"""
import os
import warnings

# torch >= 2.6 loads checkpoints with weights_only=True, which rejects the argparse/omegaconf objects that every
# fairseq checkpoint holds. The variable is read at each torch.load call; a user's own setting wins.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected")

from .environment import check_torchaudio, import_fairseq_quietly  # noqa: E402

import_fairseq_quietly()
check_torchaudio()
# distributed: torchrun + --cpu, data-parallel over gloo; resume: checkpoints that survive a kill; the rest registers
# the model, task and criterion (fairseq does not auto-import criterions)
from . import criterions, distributed, models, optim, resume, tasks  # noqa: E402,F401
from .errors import install_one_line_errors  # noqa: E402

install_one_line_errors()  # around distributed's call_main: one line and exit 2 for bad input
