from .t5 import T5Config, T5Model  # noqa: F401  (registers the model and its architectures)
