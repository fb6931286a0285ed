"""Seeded vocabularies of the synthetic pedestrians: colours, garments, belongings, scenes.

Every identity attribute is drawn from one of these tables (see :mod:`.identity`); the tables
are data, so a new garment or colour is one line here plus its drawing rule in :mod:`.render`.
Weights are relative frequencies, roughly in line with what street-level person datasets show
(most people wear plain tops, trousers and shoes; few wear hats or carry held objects).
"""

from __future__ import annotations

# The 26 PA-100K attributes in the order of the real annotation.mat (0..25).
PA100K_ATTRIBUTES: tuple[str, ...] = (
    "Female", "AgeOver60", "Age18-60", "AgeLess18", "Front", "Side", "Back", "Hat", "Glasses",
    "HandBag", "ShoulderBag", "Backpack", "HoldObjectsInFront", "ShortSleeve", "LongSleeve",
    "UpperStride", "UpperLogo", "UpperPlaid", "UpperSplice", "LowerStripe", "LowerPattern",
    "LongCoat", "Trousers", "Shorts", "Skirt&Dress", "boots",
)  # fmt: skip

# The six SYNTH-PEDES attribute slots, in the order of the "attributes" string.
SLOTS: tuple[str, ...] = ("gender", "head", "upper", "lower", "shoes", "belongings")

VIEWS: tuple[str, ...] = ("front", "side", "back")

# Colour name -> RGB. Names are what captions say; RGB values are far enough apart that a
# model can tell them apart after lighting changes.
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "white": (235, 235, 230),
    "grey": (128, 128, 132),
    "red": (200, 30, 35),
    "blue": (35, 70, 190),
    "navy": (25, 35, 90),
    "light blue": (130, 180, 230),
    "green": (40, 150, 60),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 30),
    "pink": (240, 150, 190),
    "purple": (120, 50, 150),
    "brown": (110, 70, 40),
    "beige": (210, 190, 150),
}
GARMENT_COLOURS: tuple[str, ...] = tuple(COLOURS)
DENIM_COLOURS: tuple[str, ...] = ("blue", "navy", "light blue", "black", "grey")
SHOE_COLOURS: tuple[str, ...] = ("black", "white", "brown", "grey", "blue", "red", "beige")

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (245, 215, 190), (225, 185, 150), (195, 150, 110), (150, 105, 70), (100, 70, 45),
)  # fmt: skip

HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (20, 18, 18),
    "brown": (90, 55, 30),
    "blonde": (220, 190, 110),
    "red": (160, 60, 25),
    "grey": (150, 150, 150),
    "white": (225, 225, 225),
}

GENDERS: tuple[str, ...] = ("male", "female")
AGE_GROUPS: dict[str, float] = {"child": 0.12, "adult": 0.76, "elderly": 0.12}
BUILDS: dict[str, float] = {"slim": 0.3, "average": 0.5, "heavy": 0.2}  # width factor in .render
HEIGHTS: dict[str, float] = {"short": 0.25, "average": 0.5, "tall": 0.25}

# Hair style -> (weight for male, weight for female).
HAIR_STYLES: dict[str, tuple[float, float]] = {
    "bald": (0.08, 0.0),
    "short": (0.72, 0.15),
    "medium": (0.15, 0.25),
    "long": (0.05, 0.4),
    "ponytail": (0.0, 0.2),
}
HEADWEAR: dict[str, float] = {"none": 0.8, "cap": 0.09, "beanie": 0.06, "sun hat": 0.05}
GLASSES: dict[str, float] = {"none": 0.8, "glasses": 0.13, "sunglasses": 0.07}

# Upper garment type -> (weight, sleeve length). "dress" is chosen together with the lower garment.
UPPER_TYPES: dict[str, tuple[float, str]] = {
    "t-shirt": (0.34, "short"),
    "shirt": (0.2, "long"),
    "sweater": (0.14, "long"),
    "jacket": (0.17, "long"),
    "coat": (0.08, "long"),
    "tank top": (0.07, "none"),
}
UPPER_PATTERNS: dict[str, float] = {
    "plain": 0.62,
    "stripes": 0.12,
    "plaid": 0.09,
    "logo": 0.1,
    "splice": 0.07,
}

# Lower garment type -> (weight for male, weight for female).
LOWER_TYPES: dict[str, tuple[float, float]] = {
    "trousers": (0.45, 0.3),
    "jeans": (0.4, 0.25),
    "shorts": (0.15, 0.1),
    "skirt": (0.0, 0.2),
    "dress": (0.0, 0.15),
}
LOWER_PATTERNS: dict[str, float] = {"plain": 0.82, "stripe": 0.1, "pattern": 0.08}
SHOE_TYPES: dict[str, float] = {"sneakers": 0.5, "leather shoes": 0.25, "boots": 0.17, "sandals": 0.08}

# What a person carries (at most one bag plus maybe a held object).
BAGS: dict[str, float] = {"none": 0.45, "backpack": 0.25, "shoulder bag": 0.17, "handbag": 0.13}
HELD_OBJECTS: dict[str, float] = {"none": 0.85, "phone": 0.05, "cup": 0.04, "box": 0.03, "folder": 0.03}

# Background scenes; presets pick a subset so they differ as domains.
SCENES: tuple[str, ...] = ("street", "park", "indoor", "campus", "plaza", "night", "station")
