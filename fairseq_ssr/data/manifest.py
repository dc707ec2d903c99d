"""What a binarized dataset holds, written last by binarize and checked before anything of it is read.

A dataset directory with a ``manifest.json`` is read only if every file it lists is there with its size and sha256
(the task checks it at setup): a group's file deleted, truncated or left over from another run is refused, naming
the file and its group, instead of training on what is left. The manifest also carries what made the data
(binarize settings, the inputs' fingerprints, the stages before, the SentencePiece model's digest) and the example
count of every split and group.

Publishing a new dataset over an old one: binarize first writes ``.publishing``, then removes the old manifest,
moves the new files in, writes the new manifest and removes ``.publishing``. A reader refuses a directory holding
``.publishing``, so a kill at any point leaves the old dataset whole, the new one whole, or a refusal that says to
rerun binarize. Directories without either file (fairseq-preprocess output) are read as they are.
"""
import hashlib
import json
import os
import re
from typing import Dict, List, Optional

from ..errors import BadInput

MANIFEST = "manifest.json"
SPM_NAME = "spiece.model"
PUBLISHING = ".publishing"
FORMAT = 1
_GROUP_RE = re.compile(r"^(\w+?)(?:\.g(\d+))?\.[^.]+-[^.]+\.")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def spm_digest(directory: str) -> Optional[str]:
    """sha256 of the directory's ``spiece.model``; None when it has none."""
    path = os.path.join(directory, SPM_NAME)
    return sha256_file(path) if os.path.isfile(path) else None


def check_same_spm(recorded: Optional[str], where: str, digest: Optional[str], spm_path: Optional[str]) -> None:
    """Refuse ``spm_path`` (whose sha256 is ``digest``) where ``where`` was made with another SentencePiece model
    (``recorded``); nothing to compare when either is unknown."""
    if recorded and digest and recorded != digest:
        raise BadInput(f"{spm_path} (sha256 {digest[:16]}) is not the SentencePiece model of {where} (sha256 "
                       f"{recorded[:16]}): the same ids would be other words; use that model")


def file_entry(path: str) -> dict:
    return {"size": os.path.getsize(path), "sha256": sha256_file(path)}


def what_is(name: str) -> str:
    """``train.g2.src-tgt.src.idx`` -> ``group 2 of train``, for messages."""
    m = _GROUP_RE.match(name)
    if m is None:
        return "the dataset"
    return f"group {m.group(2)} of {m.group(1)}" if m.group(2) is not None else f"the {m.group(1)} split"


def write_manifest(data_dir: str, files: List[str], **fields) -> dict:
    """``manifest.json`` listing ``files`` (names inside ``data_dir``) with sizes and digests, plus ``fields``;
    written atomically."""
    manifest = {"format": FORMAT, "files": {n: file_entry(os.path.join(data_dir, n)) for n in sorted(files)},
                **fields}
    path = os.path.join(data_dir, MANIFEST)
    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(f"{path}.tmp", path)
    return manifest


def read_manifest(data_dir: str) -> Optional[dict]:
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        files: Dict[str, dict] = manifest["files"]
        if manifest["format"] != FORMAT or not all({"size", "sha256"} <= set(e) for e in files.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadInput(f"{path}: not a dataset manifest of format {FORMAT}; rerun binarize") from None
    return manifest


def check_data_dir(data_dir: str) -> Optional[dict]:
    """The manifest of ``data_dir`` once every file it lists matches it; None for a directory without one.

    Refuses a directory that binarize left while publishing, a listed file that is missing or differs, and a
    ``train``/``valid`` file the manifest does not list (a group of another run would be read with this one)."""
    if os.path.exists(os.path.join(data_dir, PUBLISHING)):
        raise BadInput(f"{data_dir}: a binarize run stopped while publishing this dataset "
                       f"({PUBLISHING} is still there); rerun it to finish")
    manifest = read_manifest(data_dir)
    if manifest is None:
        return None
    where = os.path.join(data_dir, MANIFEST)
    for name, entry in manifest["files"].items():
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            raise BadInput(f"{path}: missing ({what_is(name)}; listed in {where})")
        size = os.path.getsize(path)
        if size != entry["size"]:
            raise BadInput(f"{path}: {size} bytes, but {where} lists {entry['size']} ({what_is(name)}): "
                           "truncated or replaced since binarize")
        if sha256_file(path) != entry["sha256"]:
            raise BadInput(f"{path}: its content differs from the sha256 in {where} ({what_is(name)}): "
                           "changed since binarize")
    splits = {_GROUP_RE.match(n).group(1) for n in manifest["files"] if _GROUP_RE.match(n)}
    for name in sorted(os.listdir(data_dir)):
        m = _GROUP_RE.match(name)
        if m and m.group(1) in splits and name.endswith((".bin", ".idx")) and name not in manifest["files"]:
            raise BadInput(f"{os.path.join(data_dir, name)}: not listed in {where} ({what_is(name)}): a file of "
                           "another run; remove it or rerun binarize")
    return manifest
