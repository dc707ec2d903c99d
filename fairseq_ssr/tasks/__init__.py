"""Registers the ``ssr_rewriting`` task (fairseq also imports every module here for ``--user-dir``)."""
from . import ssr_rewriting  # noqa: F401
