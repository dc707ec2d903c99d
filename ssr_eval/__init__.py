"""Evaluation scorers as the literature runs them: libraries (the console commands in `ssr_eval.cli` wrap them).

A package of its own, beside the fairseq plugin: scoring needs neither fairseq nor torch, and the commands start
in a fraction of a second.

- `m2`: M^2 (MaxMatch) for grammatical error correction, the CoNLL-2014 scorer's numbers in seconds
  (`m2_format` reads `.m2` gold, `m2_lattice` / `m2_merged` / `m2_segments` extract a system's edits).
- `rouge155`: ROUGE-1.5.5 run as files2rouge runs it; `rouge_python`: the same per-document numbers in Python
  (`rouge_text`: files2rouge's line pairs and sentence split, `rouge_stem`: ROUGE's Porter stemmer).
  `ptb`: the Stanford PTB tokenizer as BART's recipe runs it before files2rouge (`files2rouge --tokenize`).
- `qg`: BLEU-1..4, METEOR, ROUGE-L, CIDEr for question generation (pycocoevalcap; `meteor` runs its METEOR jar).
- `significance`: paired bootstrap between two systems (`m2scorer --compare`, `files2rouge --compare`).
- `validation`: M^2 and ROUGE as summable statistics, for choosing checkpoints by the task's metric in training.
- `textio`: UTF-8 line files with errors that name the file and line, and the line size each scorer takes.
"""
