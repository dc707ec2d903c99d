"""The pipeline stages' defaults as shell assignments (``MASK_MASK_RATIO=0.3``), for the recipes to evaluate.

The stage configs (:mod:`fairseq_ssr.pipeline`) are the only home of these values; the recipes read them from here
instead of repeating them, so changing a default is one line in its dataclass.
"""
import argparse
import shlex

from fairseq_ssr.pipeline.binarize import BinarizeConfig
from fairseq_ssr.pipeline.generation import GenerationConfig
from fairseq_ssr.pipeline.masking import MaskConfig
from fairseq_ssr.pipeline.noise import NoiseConfig
from fairseq_ssr.pipeline.options import stage_defaults
from fairseq_ssr.pipeline.sampler import SamplerConfig
from fairseq_ssr.pipeline.text import TextConfig

STAGES = {"text": TextConfig, "mask": MaskConfig, "sampler": SamplerConfig, "generation": GenerationConfig,
          "binarize": BinarizeConfig, "noise": NoiseConfig}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--prefix", default="", help="put before every name (the recipes use DEFAULT_)")
    args = p.parse_args(argv)
    for name, value in stage_defaults(STAGES, args.prefix).items():
        print(f"{name}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main()
