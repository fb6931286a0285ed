"""The procedural synthetic pedestrian generator (SYNTH-PEDES in miniature).

Persistent identities (:mod:`.identity`) drawn from seeded vocabularies (:mod:`.vocab`) are
rendered from several viewpoints under per-camera looks (:mod:`.render`, :mod:`.scenes`),
described by captions in several annotator styles with attribute phrase spans
(:mod:`.captions`), and written in the layout of a real dataset (:mod:`.writers`) so the same
reader reads real and synthetic copies. Presets (:mod:`.presets`) act as domains with disjoint
identity pools. Entry point: :func:`generate`.
"""

from plipbench.data.synth.generate import generate, parse_image_size
from plipbench.data.synth.identity import Identity, identity_for, pa100k_labels, sample_identity
from plipbench.data.synth.presets import PRESETS, SynthPreset
from plipbench.data.synth.render import render_person
from plipbench.data.synth.vocab import PA100K_ATTRIBUTES

__all__ = [
    "PA100K_ATTRIBUTES",
    "PRESETS",
    "Identity",
    "SynthPreset",
    "generate",
    "identity_for",
    "pa100k_labels",
    "parse_image_size",
    "render_person",
    "sample_identity",
]
