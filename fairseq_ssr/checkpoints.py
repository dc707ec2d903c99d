"""Load any T5 the plugin knows (a Hugging Face directory or a fairseq checkpoint) and convert between the two.

A converted fairseq model directory holds ``model.pt`` (a checkpoint that ``fairseq-generate --path``,
``--finetune-from-model`` and ``SSRRewriter.from_pretrained`` accept), ``dict.txt`` and ``spiece.model``.
"""
import warnings
from pathlib import Path
from typing import Optional, Tuple

from .data.manifest import check_same_spm, sha256_file
from .data.tokenizer import T5Tokenizer
from .models.card import model_card
from .models.config import T5Config
from .models.hf import load_hf_weights, read_hf_dir, write_hf_dir
from .models.t5 import T5Model, config_from_args

CHECKPOINT_NAME = "model.pt"
SPM_NAME = "spiece.model"
DICT_NAME = "dict.txt"


def find_model(path) -> Tuple[str, Path]:
    """What ``path`` names, decided here and nowhere else: ``("hf", DIR)`` for a Hugging Face directory (it has a
    ``config.json``), ``("fairseq", FILE)`` for a checkpoint file or a directory holding ``model.pt``."""
    p = Path(path)
    if p.is_dir() and (p / "config.json").is_file():
        return "hf", p
    if p.is_dir():
        if (p / CHECKPOINT_NAME).is_file():
            return "fairseq", p / CHECKPOINT_NAME
        raise FileNotFoundError(f"{p}: neither a Hugging Face T5 directory (no config.json) nor a fairseq model "
                                f"directory (no {CHECKPOINT_NAME})")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such checkpoint or directory")
    return "fairseq", p


def weights_file(path) -> Path:
    """The file holding a model's weights, for an HF directory, a model directory or a checkpoint path."""
    kind, p = find_model(path)
    return read_hf_dir(p).weights if kind == "hf" else p


def load_t5(path, spm: Optional[str] = None) -> Tuple[T5Model, T5Tokenizer]:
    """A model and its tokenizer from an HF directory, a fairseq checkpoint, or a directory holding ``model.pt``."""
    kind, p = find_model(path)
    return load_hf_dir(p) if kind == "hf" else load_fairseq_checkpoint(p, spm)


def load_hf_dir(hf_dir) -> Tuple[T5Model, T5Tokenizer]:
    hf = read_hf_dir(hf_dir)
    spm = _require(hf.path / SPM_NAME, "the HF directory's SentencePiece model")
    tokenizer = T5Tokenizer(spm, num_rows=hf.vocab_size)
    model = T5Model.from_config(hf.config, tokenizer.dictionary)
    load_hf_weights(model, hf.path)
    return model, tokenizer


def read_checkpoint(path) -> dict:
    """``torch.load`` with errors that name the file instead of a traceback from inside the unpickler."""
    from fairseq import checkpoint_utils

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    except Exception as e:
        raise ValueError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e}); "
                         "is the file complete?") from None
    if not isinstance(state, dict) or "model" not in state or state.get("cfg") is None:
        raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' weights or 'cfg')")
    arch = getattr(state["cfg"]["model"], "arch", None)
    if not str(arch).startswith("t5"):
        raise ValueError(f"{path}: holds a {arch} model, not T5")
    return state


def load_fairseq_checkpoint(path, spm: Optional[str] = None) -> Tuple[T5Model, T5Tokenizer]:
    state = read_checkpoint(path)
    rows = state["model"]["encoder.embed_tokens.weight"].shape[0]
    tokenizer = T5Tokenizer(checked_spm(path, state, spm), num_rows=rows)
    model = T5Model.from_config(config_from_args(state["cfg"]["model"]), tokenizer.dictionary)
    model.load_state_dict(state["model"], strict=True)
    return model, tokenizer


def checked_spm(checkpoint, state, spm: Optional[str] = None) -> str:
    """``spm`` (else the one :func:`find_spm` finds), refused unless it is the model the checkpoint recorded."""
    spm = spm or find_spm(checkpoint, state)
    recorded = (state.get("task_state") or {}).get("spm_sha256")
    check_same_spm(recorded, f"the checkpoint {checkpoint}", sha256_file(spm), spm)
    return spm


def find_spm(checkpoint, state) -> str:
    """``spiece.model`` beside the checkpoint, else in the training data directory recorded in it."""
    candidates = [Path(checkpoint).parent / SPM_NAME]
    data = getattr(state["cfg"].get("task"), "data", None) if state["cfg"].get("task") is not None else None
    if data:
        candidates += [Path(d) / SPM_NAME for d in str(data).split(":")]
    for c in candidates:
        if c.is_file():
            return str(c)
    looked = ", ".join(map(str, candidates))
    raise FileNotFoundError(f"{checkpoint}: no {SPM_NAME} found (looked in {looked}); pass it explicitly")


def _require(path: Path, what: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    return str(path)


def training_config(data_dir, model_args: T5Config):
    """The full fairseq config a checkpoint carries, as ``fairseq-train DATA --task ssr_rewriting --arch t5``
    makes it."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    flags = [str(data_dir), "--task", "ssr_rewriting", "--arch", "t5"]
    for name, value in vars(model_args).items():
        if name == "hf_checkpoint" or value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    with warnings.catch_warnings():  # hydra's deprecation notices about fairseq's use of it: not the user's business
        warnings.simplefilter("ignore")
        cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), flags))
    cfg.common.user_dir = None  # loaders import the plugin themselves; an absolute path would not travel
    return cfg


def save_model_dir(model: T5Model, tokenizer: T5Tokenizer, out_dir) -> Path:
    """Write ``model.pt``, ``dict.txt`` and ``spiece.model`` into ``out_dir``."""
    from fairseq import checkpoint_utils

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = training_config(out, model.t5_config)
    # no optimizer state: start training from it with --finetune-from-model (or --restore-file with the --reset-* flags)
    history = [{"criterion_name": None, "optimizer_name": None, "lr_scheduler_state": {"best": None}, "num_updates": 0}]
    state = {"cfg": cfg, "args": None, "model": model.state_dict(), "optimizer_history": history, "extra_state": {},
             # the ssr_rewriting task pads a data directory's dictionary to these rows before rebuilding the model
             "task_state": {"dictionary_rows": len(tokenizer.dictionary),
                            "spm_sha256": sha256_file(tokenizer.spm_path)}}
    checkpoint_utils.torch_persistent_save(state, str(out / CHECKPOINT_NAME))
    tokenizer.dictionary.save(str(out / DICT_NAME))
    (out / SPM_NAME).write_bytes(Path(tokenizer.spm_path).read_bytes())
    return out / CHECKPOINT_NAME


def convert_from_hf(hf_dir, out_dir) -> Path:
    model, tokenizer = load_hf_dir(hf_dir)
    return save_model_dir(model, tokenizer, out_dir)


def convert_to_hf(checkpoint, out_dir, spm: Optional[str] = None) -> Path:
    """An HF directory (weights, config, generation config, tokenizer, model card) from a fairseq checkpoint."""
    state = read_checkpoint(checkpoint)
    rows = state["model"]["encoder.embed_tokens.weight"].shape[0]
    spm = checked_spm(checkpoint, state, spm)
    T5Tokenizer(spm, num_rows=rows)  # fails early if the SentencePiece model does not belong to these weights
    cfg = config_from_args(state["cfg"]["model"])  # fields a checkpoint predates get their defaults
    card = model_card(state, checkpoint, cfg, name=Path(out_dir).name)
    return write_hf_dir(out_dir, state["model"], cfg, spm, files={"README.md": card})
