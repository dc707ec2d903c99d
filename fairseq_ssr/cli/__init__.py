"""Console entry points: argument parsing over the library."""
