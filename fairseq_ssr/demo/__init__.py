"""Library parts of ``recipes/demo.sh``: the demo corpus, synthetic GEC data with gold edits, and the final report.

The shell recipe runs the real tools (pipeline stages, fairseq-train, fairseq-generate, m2scorer); what it needs
beyond them lives here, as plain functions that the tests exercise and ``recipes/demo_*.py`` wrap as commands.
"""
