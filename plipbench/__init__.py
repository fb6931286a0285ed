"""plipbench: benchmark and evaluation harness for person-centric vision and vision-language models.

Heavy libraries (torch, transformers, ...) are imported lazily inside the functions that need
them, so that importing this package and running ``plipbench --help`` stay instant.
"""

__version__ = "0.1.0"


def evaluate(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy wrapper, see the runner for the signature
    """Evaluate a backbone on tasks or a suite; see :func:`plipbench.evaluation.runner.evaluate`."""
    from plipbench.evaluation.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
