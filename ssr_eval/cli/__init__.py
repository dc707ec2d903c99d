"""Console entry points of the scorers: argument parsing over `ssr_eval`."""
