"""Source/target pairs for T5 rewriting, from one or more difficulty groups, with T5's decoder input.

fairseq's ``LanguagePairDataset`` feeds the decoder ``[eos] + target[:-1]``; T5's decoder starts from pad
(``decoder_start_token_id = 0``), so the collater here builds ``prev_output_tokens = [pad] + target[:-1]``. Examples
are laid out group after group (``train.g0``, ``train.g1``, ...); every sample says which group each example
came from, so the curriculum can batch within one group and the criterion can report per-group validation metrics.
"""
import glob
import logging
import os
import re
import struct
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils, indexed_dataset
from fairseq.data.data_utils_fast import batch_by_size_vec
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..errors import BadInput
from . import rewrite_format
from .dictionary import T5Dictionary
from .rewrite_format import FORMATS

logger = logging.getLogger(__name__)


@dataclass
class RewriteDataConfig(FairseqDataclass):
    """The data settings of the ``ssr_rewriting`` task: where the pairs are, their marker layout, length policy."""

    data: Optional[str] = field(
        default=None,
        metadata={"help": "data directory: dict.txt (or dict.SRC.txt), spiece.model and binarized "
                          "{split}.SRC-TGT.{SRC,TGT} files, or {split}.g{k}.SRC-TGT.* for difficulty groups k=0.."},
    )
    source_lang: str = field(default="src", metadata={"help": "source file suffix", "argparse_alias": "-s"})
    target_lang: str = field(default="tgt", metadata={"help": "target file suffix", "argparse_alias": "-t"})
    rewrite_format: ChoiceEnum(FORMATS) = field(
        default="marked",
        metadata={"help": "marker layout: 'marked' = sources and targets carry their <s_i> markers already (SSR "
                          "data, controlled rewriting of marked parts); 'whole' = plain parallel text, the source "
                          "is wrapped as '<s_1> x </s_1>' and the target as '<s_1> y' (the paper's fine-tuning); "
                          "'seq2seq' = plain text, no markers"},
    )
    max_source_positions: int = field(default=512, metadata={"help": "max source tokens (markers and eos included)"})
    max_target_positions: int = field(default=512, metadata={"help": "max target tokens (markers and eos included)"})
    truncate_source: bool = field(
        default=False,
        metadata={"help": "cut sources longer than --max-source-positions (whole/seq2seq formats; the number cut is "
                          "logged) instead of dropping their examples from training"},
    )


class RewritePairDataset(FairseqDataset):
    """Pairs ``(source, target)`` from consecutive groups; ``targets=None`` for inference on sources only.

    ``fmt`` is a layout of :mod:`fairseq_ssr.data.rewrite_format`, applied as examples are read; an example
    that does not fit the layout is an error naming its file and index. Inference inputs (no targets) follow
    :func:`~fairseq_ssr.data.rewrite_format.inference_source` instead: marked where the user marked them.
    ``truncate_source_to`` cuts longer sources (``whole``/``seq2seq`` only: cutting a marked source would orphan
    its spans). ``names`` name each group's source file in error messages.
    """

    def __init__(
        self,
        sources: Sequence,
        targets: Optional[Sequence],
        dictionary: T5Dictionary,
        fmt: str = "marked",
        truncate_source_to: Optional[int] = None,
        names: Optional[Sequence[str]] = None,
        shuffle: bool = True,
    ):
        if fmt not in rewrite_format.FORMATS:
            raise ValueError(f"unknown rewrite format {fmt!r}; choose from {rewrite_format.FORMATS}")
        rewrite_format.check_truncation(fmt, truncate_source_to is not None)
        if targets is None:
            sources = [[rewrite_format.inference_source(x, fmt, dictionary, truncate_source_to) for x in group]
                       for group in sources]
        self.sources, self.targets = list(sources), (list(targets) if targets is not None else None)
        self.dictionary, self.fmt, self.shuffle = dictionary, fmt, shuffle
        self.names = list(names) if names is not None else [f"group {g}" for g in range(len(self.sources))]
        self.truncate_source_to = truncate_source_to
        lengths = [len(s) for s in self.sources]
        self.starts = np.cumsum([0] + lengths)
        src_extra, tgt_extra = rewrite_format.extra_tokens(fmt) if targets is not None else (0, 0)
        raw_src = np.concatenate([_sizes(s) for s in self.sources]) if lengths else np.zeros(0, dtype=np.int64)
        self.src_sizes = raw_src + src_extra
        self.num_truncated = 0
        if truncate_source_to is not None and targets is not None:
            self.num_truncated = int((self.src_sizes > truncate_source_to).sum())
            self.src_sizes = np.minimum(self.src_sizes, truncate_source_to)
        if self.targets is not None:
            for g, (s, t) in enumerate(zip(self.sources, self.targets)):
                if len(s) != len(t):
                    raise ValueError(f"{self.names[g]}: {len(s)} sources but {len(t)} targets")
            self.tgt_sizes = np.concatenate([_sizes(t) for t in self.targets]) + tgt_extra
        else:
            self.tgt_sizes = None

    @property
    def num_groups(self) -> int:
        return len(self.sources)

    def group_of(self, index: int) -> int:
        return int(np.searchsorted(self.starts, index, side="right")) - 1

    def group_indices(self, group: int) -> np.ndarray:
        return np.arange(self.starts[group], self.starts[group + 1], dtype=np.int64)

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, index):
        g = self.group_of(index)
        local = int(index - self.starts[g])
        src = self.sources[g][local].long()
        if self.targets is None:  # inference inputs were laid out when the dataset was made
            return {"id": index, "group": g, "source": src}
        self._check(src, g, local, "source")
        if self.truncate_source_to is not None:
            src = rewrite_format.truncate_source(src, self.truncate_source_to, self.fmt)
        tgt = self.targets[g][local].long()
        self._check(tgt, g, local, "target")
        return {
            "id": index, "group": g, "source": rewrite_format.format_source(src, self.fmt, self.dictionary),
            "target": rewrite_format.format_target(tgt, self.fmt, self.dictionary),
        }

    def _check(self, ids: torch.Tensor, group: int, local: int, side: str):
        where = f"{self.names[group]} example {local} ({side})"
        if ids.numel() == 0 or int(ids[-1]) != self.dictionary.eos():
            raise ValueError(f"{where}: does not end with eos ({self.dictionary.eos()})")
        marked = rewrite_format.has_markers(ids, self.dictionary)
        if self.fmt != "marked" and marked:
            raise ValueError(f"{where}: already carries span markers; use --rewrite-format marked")
        if self.fmt == "marked" and side == "source" and not marked:
            raise ValueError(f"{where}: has no span markers; use --rewrite-format whole (or seq2seq) for plain text")

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        pad, eos = self.dictionary.pad(), self.dictionary.eos()
        sources = [s["source"] for s in samples]
        batch = {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "groups": torch.LongTensor([s["group"] for s in samples]),
            "num_groups": self.num_groups,
            "net_input": {
                "src_tokens": data_utils.collate_tokens(sources, pad, eos),
                "src_lengths": torch.LongTensor([s.numel() for s in sources]),
            },
            "target": None,
        }
        if self.targets is not None:
            targets = [s["target"] for s in samples]
            batch["target"] = data_utils.collate_tokens(targets, pad, eos)
            batch["ntokens"] = sum(t.numel() for t in targets)
            batch["net_input"]["prev_output_tokens"] = data_utils.collate_tokens(
                [torch.cat([t.new([pad]), t[:-1]]) for t in targets], pad, eos
            )
        else:
            batch["ntokens"] = sum(s.numel() for s in sources)
        return batch

    # --- sizes, for batching and filtering ----------------------------------------------------------------------
    def num_tokens(self, index):
        return max(self.src_sizes[index], self.tgt_sizes[index] if self.tgt_sizes is not None else 0)

    def num_tokens_vec(self, indices):
        sizes = self.src_sizes[indices]
        return sizes if self.tgt_sizes is None else np.maximum(sizes, self.tgt_sizes[indices])

    def size(self, index):
        return (self.src_sizes[index], self.tgt_sizes[index] if self.tgt_sizes is not None else 0)

    @property
    def sizes(self):
        return self.src_sizes if self.tgt_sizes is None else np.vstack((self.src_sizes, self.tgt_sizes)).T

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None, required_batch_size_multiple=1):
        """fairseq's own batching, but keeping the last batch.

        fairseq 0.12's ``data_utils.batch_by_size`` drops a last batch whose size is not a multiple of
        ``--required-batch-size-multiple`` (8 by default; fairseq issue #5036), so fairseq-generate silently
        skipped test sentences and passes lost examples. The compiled batcher underneath keeps every index.
        """
        indices = np.asarray(indices, dtype=np.int64)
        return batch_by_size_vec(
            indices, self.num_tokens_vec(indices).astype(np.int64), int(max_tokens or -1), int(max_sentences or -1),
            required_batch_size_multiple,
        )

    def ordered_indices(self):
        """Shortest first (by source, then target), ties broken at random when shuffling, as fairseq does."""
        indices = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self), dtype=np.int64)
        return self.sort_by_size(indices)

    def sort_by_size(self, indices: np.ndarray) -> np.ndarray:
        if self.tgt_sizes is not None:
            indices = indices[np.argsort(self.tgt_sizes[indices], kind="mergesort")]
        return indices[np.argsort(self.src_sizes[indices], kind="mergesort")]

    def filter_indices_by_size(self, indices, max_sizes) -> Tuple[np.ndarray, List[int]]:
        too_long = self.too_long(indices, max_sizes)
        return indices[~too_long], indices[too_long].tolist()

    def too_long(self, indices: np.ndarray, max_sizes) -> np.ndarray:
        """Mask of examples longer than ``max_sizes`` (an int, or a (source, target) pair; None = no limit)."""
        max_src, max_tgt = max_sizes if isinstance(max_sizes, (tuple, list)) else (max_sizes, max_sizes)
        mask = np.zeros(len(indices), dtype=bool)
        if max_src is not None:
            mask |= self.src_sizes[indices] > max_src
        if max_tgt is not None and self.tgt_sizes is not None:
            mask |= self.tgt_sizes[indices] > max_tgt
        return mask


def _sizes(ds) -> np.ndarray:
    sizes = getattr(ds, "sizes", None)
    if sizes is None:
        sizes = [len(x) for x in ds]
    return np.asarray(sizes, dtype=np.int64)


def split_prefixes(data_path: str, split: str, src: str, tgt: str, impl: Optional[str] = None) -> List[str]:
    """File prefixes of a split: ``split.g0.src-tgt.``, ``split.g1.src-tgt.``, ... or ungrouped ``split.src-tgt.``."""

    def exists(prefix):
        return indexed_dataset.dataset_exists(prefix + src, impl=impl)

    grouped = []
    while exists(os.path.join(data_path, f"{split}.g{len(grouped)}.{src}-{tgt}.")):
        grouped.append(os.path.join(data_path, f"{split}.g{len(grouped)}.{src}-{tgt}."))
    later = sorted(glob.glob(os.path.join(glob.escape(data_path), f"{split}.g*.{src}-{tgt}.*")))
    later = [p for p in later if int(re.search(r"\.g(\d+)\.", os.path.basename(p)).group(1)) > len(grouped)]
    if later:  # training on the groups before a gap would silently drop the rest
        gap = os.path.join(data_path, f"{split}.g{len(grouped)}.{src}-{tgt}.{src}")
        raise BadInput(f"{gap}.bin/.idx: group {len(grouped)} of {split} is incomplete or missing, but "
                       f"{os.path.basename(later[0])} exists: the dataset is incomplete; rerun binarize")
    plain = os.path.join(data_path, f"{split}.{src}-{tgt}.")
    if grouped and exists(plain):
        raise ValueError(f"{data_path}: both grouped ({split}.g0.*) and ungrouped ({split}.{src}-{tgt}.*) data exist")
    if not grouped and not exists(plain):
        raise FileNotFoundError(f"no {split} data in {data_path}: expected {plain}{src}.bin or {split}.g0.*")
    return grouped or [plain]


def _load(path: str, dictionary: T5Dictionary, impl: Optional[str]):
    """fairseq's indexed dataset at ``path``, refused when its ``.bin`` does not hold what its ``.idx`` points to
    (a truncated file, or a ``.bin`` of another run beside this ``.idx``)."""
    try:
        ds = data_utils.load_indexed_dataset(path, dictionary, impl)
    except (ValueError, AssertionError, struct.error) as e:
        raise BadInput(f"{path}.idx: not a readable fairseq index ({e or type(e).__name__}); rerun binarize") from None
    index = getattr(ds, "_index", None)
    if index is not None and len(index):
        need = int(index._pointers[-1]) + int(index._sizes[-1]) * index.dtype().itemsize
        have = os.path.getsize(f"{path}.bin")
        if have != need:
            raise BadInput(f"{path}.bin: {have} bytes, but {path}.idx describes {need}: truncated, or not the "
                           "data of this index; rerun binarize")
    return ds


def load_rewrite_dataset(
    data_path: str,
    split: str,
    dictionary: T5Dictionary,
    fmt: str,
    src: str = "src",
    tgt: str = "tgt",
    truncate_source_to: Optional[int] = None,
    dataset_impl: Optional[str] = None,
    shuffle: bool = True,
) -> RewritePairDataset:
    """Read a split's binarized files (grouped or not) into a :class:`RewritePairDataset`."""
    sources, targets, names = [], [], []
    for prefix in split_prefixes(data_path, split, src, tgt, dataset_impl):
        for side in (src, tgt):
            if os.path.exists(f"{prefix}{side}.bin") and os.path.getsize(f"{prefix}{side}.bin") == 0:
                raise ValueError(f"{prefix}{side}.bin is empty: a split or group without examples cannot be read")
        sources.append(_load(prefix + src, dictionary, dataset_impl))
        tgt_ds = _load(prefix + tgt, dictionary, dataset_impl)
        if tgt_ds is None:
            raise BadInput(f"{prefix}{tgt}.bin/.idx missing next to {prefix}{src}.bin")
        targets.append(tgt_ds)
        names.append(prefix + src)
    ds = RewritePairDataset(sources, targets, dictionary, fmt, truncate_source_to, names, shuffle)
    logger.info(
        f"{data_path} {split}: {len(ds)} examples in {ds.num_groups} group(s) "
        f"{[len(s) for s in sources]}, format {fmt}"
        + (f", {ds.num_truncated} sources truncated to {truncate_source_to} tokens" if truncate_source_to else "")
    )
    return ds
