"""The model card (``README.md``) of an exported directory: what the fairseq checkpoint records about its training,
so that a ``push_to_hub`` of the directory says what it is (base model, SSR variant and curriculum, data, updates,
the fairseq command)."""
import json
import shlex
from pathlib import Path
from typing import List, Optional

from .config import SHAPE_FIELDS, T5Config

# settings fairseq fills in at run time (ranks, devices, derived sizes): not part of the command a user typed
_RUNTIME = {
    "_name", "no_seed_provided", "distributed_rank", "distributed_world_size", "distributed_num_procs",
    "distributed_port", "distributed_init_method", "device_id", "batch_size_valid", "max_tokens_valid", "data",
    "task", "arch", "user_dir",
}


def model_card(state: dict, checkpoint, cfg: T5Config, name: str) -> str:
    task, model_args = state["cfg"].get("task"), state["cfg"]["model"]
    history = state.get("optimizer_history") or [{}]
    updates = history[-1].get("num_updates", 0)
    data = _get(task, "data")
    stats = _data_stats(data)
    base = _get(model_args, "hf_checkpoint") or _get(state["cfg"].get("checkpoint"), "finetune_from_model")
    rows = [
        ("base checkpoint", f"`{base}`" if base else "none recorded (trained from scratch, or converted)"),
        ("architecture", _architecture(cfg)),
        ("rewrite format", _get(task, "rewrite_format") or "not recorded"),
        ("SSR data", _objective(stats)),
        ("curriculum", _curriculum(task, state)),
        ("training data", _data_size(data, stats, state)),
        ("updates", f"{updates:,}" + _epoch(state)),
    ]
    command = training_command(state)
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text2text-generation",
        "tags: [t5, fairseq, fairseq-ssr, sequence-span-rewriting]",
        "---",
        "",
        f"# {name}",
        "",
        "A T5 trained with fairseq-ssr (Sequence Span Rewriting: Zhou et al., \"Improving Sequence-to-Sequence "
        "Pre-training via Sequence Span Rewriting\", EMNLP 2021) and exported from the fairseq checkpoint "
        f"`{Path(checkpoint).name}` by `ssr-convert to-hf`. It loads in `T5ForConditionalGeneration`; "
        "`generation_config.json` makes `generate()` decode as `fairseq-generate --beam 1` does.",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in rows],
        "",
    ]
    if command:
        lines += ["## Training command", "",
                  "Reconstructed from the checkpoint's config (the flags that differ from fairseq-train's defaults):",
                  "", "```bash", command, "```", ""]
    return "\n".join(lines)


def training_command(state: dict) -> Optional[str]:
    """``fairseq-train`` with the flags whose recorded values differ from a fresh parse's defaults."""
    from fairseq import options

    model_args, task = state["cfg"]["model"], state["cfg"].get("task")
    arch = _get(model_args, "arch")
    data = _get(task, "data")
    if not arch or not data or not hasattr(model_args, "__dict__"):
        return None
    parser = options.get_training_parser()
    defaults = vars(options.parse_args_and_arch(parser, [str(data), "--task", "ssr_rewriting", "--arch", str(arch)]))
    skip = set(_RUNTIME)
    if _get(model_args, "hf_checkpoint"):
        skip.update(SHAPE_FIELDS, ("tie_word_embeddings", "scale_decoder_outputs"))  # taken from the HF directory
    flags: List[str] = []
    for key, value in sorted(vars(model_args).items()):
        if key in skip or key not in defaults or value == defaults[key] or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, shlex.quote(str(value))]
    head = ["fairseq-train", shlex.quote(str(data)), "--user-dir", "fairseq_ssr", "--task", "ssr_rewriting", "--arch",
            str(arch)]
    return " \\\n    ".join(" ".join(head[i:i + 8]) for i in range(0, len(head), 8)) + "".join(
        f" \\\n    {' '.join(pair)}" for pair in _pairs(flags))


def _pairs(flags: List[str]):
    """Group ``--flag value`` pairs (and lone switches) for one flag a line."""
    group: List[str] = []
    for item in flags:
        if item.startswith("--") and group:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def _get(obj, key):
    if obj is None:
        return None
    try:
        return obj.get(key) if hasattr(obj, "get") else getattr(obj, key, None)
    except Exception:  # omegaconf raises on keys a config does not have
        return None


def _architecture(cfg: T5Config) -> str:
    layout = ("tied" if cfg.tie_word_embeddings else "separate lm_head") + (
        ", scaled by d_model**-0.5" if cfg.scale_decoder_outputs else ", unscaled")
    if cfg.scale_decoder_outputs and not cfg.tie_word_embeddings:
        layout += " (a layout of transformers 5: transformers 4 would tie lm_head to the embedding)"
    return (f"d_model {cfg.d_model}, d_ff {cfg.d_ff}, {cfg.num_heads} heads x d_kv {cfg.d_kv}, "
            f"{cfg.num_layers}+{cfg.num_decoder_layers} layers, `{cfg.feed_forward_proj}`; output layer {layout}")


def _data_stats(data) -> Optional[dict]:
    """``stats.json`` that ``binarize`` writes beside the data, when the directory is still there."""
    if not data:
        return None
    path = Path(str(data).split(":")[0]) / "stats.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _objective(stats) -> str:
    if not stats or "objective" not in stats:
        return "not recorded (no stats.json beside the training data)"
    groups = stats.get("groups") or {}
    score = f", {groups['k']} difficulty groups by `{groups['score']}`" if groups.get("k") else ""
    return f"objective `{stats['objective']}`{score}"


def _curriculum(task, state) -> str:
    order = _get(task, "curriculum_order")
    if order is None:
        return "not recorded"
    extra = state.get("extra_state") or {}
    plan = next((v.get("curriculum") for v in extra.values() if isinstance(v, dict) and v.get("curriculum")), None)
    if plan is None:
        return f"none (the training data had one group; --curriculum-order {order} had no effect)"
    schedule = _get(task, "curriculum_schedule") or "even split of --max-update"
    return f"`{order}`, mix `{_get(task, 'curriculum_mix')}`, schedule {schedule}"


def _data_size(data, stats, state) -> str:
    extra = state.get("extra_state") or {}
    plan = next((v.get("curriculum") for v in extra.values() if isinstance(v, dict) and v.get("curriculum")), None)
    where = f"`{data}`" if data else "not recorded"
    if plan and plan.get("kept_per_group"):
        kept = plan["kept_per_group"]
        return f"{where}: {sum(kept):,} training examples in {len(kept)} groups ({', '.join(f'{k:,}' for k in kept)})"
    if stats and isinstance(stats.get("examples_out"), dict) and "train" in stats["examples_out"]:
        return f"{where}: {int(stats['examples_out']['train']):,} training examples"
    return where


def _epoch(state) -> str:
    itr = (state.get("extra_state") or {}).get("train_iterator") or {}
    return f" ({itr['epoch']} epochs started)" if "epoch" in itr else ""
