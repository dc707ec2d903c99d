"""The offline SSR data pipeline (paper 3.1-3.2): text -> examples -> masked spans -> imperfect spans sampled by a
T5 -> SSR pairs in difficulty groups -> fairseq datasets.

One module per stage (``text``, ``masking``, ``generation`` with its ``sampler``, ``binarize``), each with one config
dataclass that is the only home of its defaults; ``preprocess/`` holds one thin command per stage over them.
What ``fairseq-train`` reads at training time lives in :mod:`fairseq_ssr.data`, below this package.
"""
