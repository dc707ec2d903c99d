"""Registers the ``ssr_cross_entropy`` criterion (fairseq does not auto-import criterions from ``--user-dir``)."""
from . import ssr_cross_entropy  # noqa: F401
