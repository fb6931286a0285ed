"""plipbench: benchmark and evaluation harness for person-centric vision and vision-language models.

Heavy libraries (torch, transformers, ...) are imported lazily inside the functions that need
them, so that importing this package and running ``plipbench --help`` stay instant.
"""

__version__ = "0.1.0"
