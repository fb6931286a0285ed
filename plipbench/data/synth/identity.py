"""A synthetic identity: a persistent person whose appearance is drawn once from seeded vocabularies.

Seeding protocol: every random stream is a :class:`numpy.random.Generator` built from
``(preset, seed, index, *purpose)`` through :func:`derive_rng` (a SHA-256 of the key fed to a
``SeedSequence``). The identity with index ``i`` of preset ``p`` is therefore the same person
whatever ``--identities`` or the worker count is, and two presets never draw from the same stream,
so their identity pools are disjoint (each preset is its own population, like a real domain).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
from dataclasses import asdict, dataclass

import numpy as np

from plipbench.data.synth import vocab
from plipbench.data.synth.vocab import PA100K_ATTRIBUTES


def derive_rng(*key: object) -> np.random.Generator:
    """A generator seeded from the canonical text of ``key`` (stable across processes and runs)."""
    digest = hashlib.sha256("\x1f".join(str(k) for k in key).encode("utf-8")).digest()
    # Philox is a counter-based generator keyed directly by 128 bits: cheap to build per image.
    return np.random.Generator(np.random.Philox(key=int.from_bytes(digest[:16], "little")))


_CUMULATIVE: dict[tuple, tuple[tuple[str, ...], list[float]]] = {}


def _pick(rng: np.random.Generator, table: dict[str, float] | tuple[str, ...]) -> str:
    """One name from a weighted table (dict) or a uniform one (tuple), with one uniform draw."""
    if isinstance(table, dict):
        key = tuple(table.items())
        if key not in _CUMULATIVE:
            total = sum(table.values())
            _CUMULATIVE[key] = (tuple(table), list(itertools.accumulate(w / total for w in table.values())))
        names, cum = _CUMULATIVE[key]
        return names[min(bisect.bisect_right(cum, rng.random()), len(names) - 1)]
    return table[int(rng.random() * len(table))]


@dataclass(frozen=True)
class Identity:
    """Everything that stays the same across the images of one person (JSON-serialisable)."""

    gender: str  # "male" | "female" (gender presentation)
    age: str  # "child" | "adult" | "elderly"
    build: str
    height: str
    skin: int  # index into vocab.SKIN_TONES
    hair_style: str
    hair_colour: str
    headwear: str
    headwear_colour: str
    glasses: str
    upper_type: str
    upper_sleeves: str  # "short" | "long" | "none"
    upper_colour: str
    upper_colour2: str  # second colour of stripes / plaid / logo / splice
    upper_pattern: str
    lower_type: str
    lower_colour: str
    lower_pattern: str
    shoes_type: str
    shoes_colour: str
    bag: str
    bag_colour: str
    held_object: str
    held_colour: str

    def to_dict(self) -> dict:
        return asdict(self)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one person. The draw order is fixed: changing it changes every dataset (bump the version)."""
    gender = _pick(rng, vocab.GENDERS)
    female = gender == "female"
    age = _pick(rng, vocab.AGE_GROUPS)
    build = _pick(rng, vocab.BUILDS)
    height = _pick(rng, vocab.HEIGHTS)
    skin = int(rng.integers(len(vocab.SKIN_TONES)))
    hair_style = _pick(rng, {k: w[1] if female else w[0] for k, w in vocab.HAIR_STYLES.items()})
    hair_colour = _pick(rng, {"black": 0.45, "brown": 0.3, "blonde": 0.15, "red": 0.06, "grey": 0.04})
    if age == "elderly":
        hair_colour = "grey" if rng.random() < 0.6 else "white"
    headwear = _pick(rng, vocab.HEADWEAR)
    headwear_colour = _pick(rng, vocab.GARMENT_COLOURS)
    glasses = _pick(rng, vocab.GLASSES)
    lower_type = _pick(rng, {k: w[1] if female else w[0] for k, w in vocab.LOWER_TYPES.items()})
    upper_type = _pick(rng, {k: w[0] for k, w in vocab.UPPER_TYPES.items()})
    upper_sleeves = vocab.UPPER_TYPES[upper_type][1]
    if lower_type == "dress":
        upper_type, upper_sleeves = "dress", ("short" if rng.random() < 0.6 else "long")
    upper_colour = _pick(rng, vocab.GARMENT_COLOURS)
    upper_colour2 = _pick(rng, tuple(c for c in vocab.GARMENT_COLOURS if c != upper_colour))
    upper_pattern = _pick(rng, vocab.UPPER_PATTERNS)
    if upper_type == "coat" and upper_pattern in ("stripes", "logo"):
        upper_pattern = "plain"
    if lower_type == "jeans":
        lower_colour = _pick(rng, vocab.DENIM_COLOURS)
    elif lower_type == "dress":
        lower_colour = upper_colour
    else:
        lower_colour = _pick(rng, tuple(c for c in vocab.GARMENT_COLOURS if c != upper_colour))
    lower_pattern = "plain" if lower_type in ("jeans", "dress") else _pick(rng, vocab.LOWER_PATTERNS)
    shoes_type = _pick(rng, vocab.SHOE_TYPES)
    shoes_colour = _pick(rng, vocab.SHOE_COLOURS)
    bag = _pick(rng, vocab.BAGS)
    bag_colour = _pick(rng, vocab.GARMENT_COLOURS)
    held_object = _pick(rng, vocab.HELD_OBJECTS)
    held_colour = _pick(rng, ("white", "black", "red", "blue", "brown", "yellow"))
    return Identity(
        gender=gender, age=age, build=build, height=height, skin=skin, hair_style=hair_style,
        hair_colour=hair_colour, headwear=headwear, headwear_colour=headwear_colour, glasses=glasses,
        upper_type=upper_type, upper_sleeves=upper_sleeves, upper_colour=upper_colour,
        upper_colour2=upper_colour2, upper_pattern=upper_pattern, lower_type=lower_type,
        lower_colour=lower_colour, lower_pattern=lower_pattern, shoes_type=shoes_type,
        shoes_colour=shoes_colour, bag=bag, bag_colour=bag_colour, held_object=held_object,
        held_colour=held_colour,
    )  # fmt: skip


@functools.lru_cache(maxsize=4096)
def identity_for(preset: str, seed: int, index: int) -> Identity:
    """The person with 0-based ``index`` in the pool of ``preset`` for ``seed`` (cached; immutable)."""
    return sample_identity(derive_rng("identity", preset, seed, index))


def pa100k_labels(identity: Identity, view: str) -> list[int]:
    """The 26 PA-100K labels of one image, in :data:`PA100K_ATTRIBUTES` order.

    Labels follow what is drawn in that view: Front/Side/Back come from the viewpoint; glasses, a
    logo and a held object are drawn only when the front or side of the person is visible, so
    they are labelled 0 in back views. A backpack is labelled in every view (its straps show from
    the front). LongCoat implies LongSleeve; a dress counts as Skirt&Dress.
    """
    i = identity
    visible_front = view != "back"
    on = {
        "Female": i.gender == "female",
        "AgeOver60": i.age == "elderly",
        "Age18-60": i.age == "adult",
        "AgeLess18": i.age == "child",
        "Front": view == "front",
        "Side": view == "side",
        "Back": view == "back",
        "Hat": i.headwear != "none",
        "Glasses": i.glasses != "none" and visible_front,
        "HandBag": i.bag == "handbag",
        "ShoulderBag": i.bag == "shoulder bag",
        "Backpack": i.bag == "backpack",
        "HoldObjectsInFront": i.held_object != "none" and visible_front,
        "ShortSleeve": i.upper_sleeves in ("short", "none"),  # a tank top counts as short-sleeved
        "LongSleeve": i.upper_sleeves == "long",
        "UpperStride": i.upper_pattern == "stripes",
        "UpperLogo": i.upper_pattern == "logo" and visible_front,
        "UpperPlaid": i.upper_pattern == "plaid",
        "UpperSplice": i.upper_pattern == "splice",
        "LowerStripe": i.lower_pattern == "stripe",
        "LowerPattern": i.lower_pattern == "pattern",
        "LongCoat": i.upper_type == "coat",
        "Trousers": i.lower_type in ("trousers", "jeans"),
        "Shorts": i.lower_type == "shorts",
        "Skirt&Dress": i.lower_type in ("skirt", "dress"),
        "boots": i.shoes_type == "boots",
    }
    return [int(on[name]) for name in PA100K_ATTRIBUTES]
