"""Backbone families: one module per source of models, each exposing a ``build_*(target, *, device, **kwargs)`` factory.

Registered lazily in :mod:`plipbench.models.registry` (importing this package imports nothing heavy).
"""
