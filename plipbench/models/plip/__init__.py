"""The PLIP model (Zuo et al., NeurIPS 2024): CLIP-style ModifiedResNet image encoder + BERT text encoder.

Submodules: ``modified_resnet`` (image encoder), ``text`` (BERT encoder + pooling + projection),
``tokenizer`` (WordPiece training), ``model`` (``PlipConfig``/``PlipModel`` and named configs),
``checkpoint`` (plipbench checkpoint directories), ``official`` (the released RN50 checkpoint).
"""
