"""The person-centric backbone zoo: loaders for the official checkpoint layouts of LUPerson, TransReID-SSL,
PASS, HAP, SOLIDER and the CLIP-based text ReID models, each proven equal to a PyPI reference
architecture by the tests (``tests/models/test_zoo_*.py``). Families are registered lazily in
:mod:`plipbench.models.registry`; the named baselines are ``baselines/*.yaml``.
"""
