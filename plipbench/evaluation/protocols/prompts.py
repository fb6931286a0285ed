"""Positive / negative prompt sentences for zero-shot pedestrian attribute recognition.

Every attribute gets a pair of sentences that differ only in the attribute: the zero-shot protocol
scores an image by how much closer it is to the positive than to the negative sentence. The 26
PA-100K attributes have hand-written pairs; any other name gets a generic pair built from the name
(camelCase and ``_`` / ``-`` / ``&`` split into words: ``"upperBodyLogo"`` -> "a photo of a person
with upper body logo" / "a photo of a person without upper body logo").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PREFIX = "a photo of a person"

PA100K_PROMPTS: dict[str, tuple[str, str]] = {
    "Female": ("a photo of a woman", "a photo of a man"),
    "AgeOver60": ("a photo of an elderly person over 60 years old", "a photo of a person younger than 60 years old"),
    "Age18-60": ("a photo of an adult person between 18 and 60 years old",
                 "a photo of a person who is a child or elderly"),
    "AgeLess18": ("a photo of a child under 18 years old", "a photo of an adult person"),
    "Front": ("a photo of a person seen from the front", "a photo of a person not seen from the front"),
    "Side": ("a photo of a person seen from the side", "a photo of a person not seen from the side"),
    "Back": ("a photo of a person seen from the back", "a photo of a person not seen from the back"),
    "Hat": ("a photo of a person wearing a hat", "a photo of a person without a hat"),
    "Glasses": ("a photo of a person wearing glasses", "a photo of a person without glasses"),
    "HandBag": ("a photo of a person carrying a handbag", "a photo of a person without a handbag"),
    "ShoulderBag": ("a photo of a person carrying a shoulder bag", "a photo of a person without a shoulder bag"),
    "Backpack": ("a photo of a person carrying a backpack", "a photo of a person without a backpack"),
    "HoldObjectsInFront": ("a photo of a person holding objects in front", "a photo of a person holding nothing"),
    "ShortSleeve": ("a photo of a person wearing a short-sleeved top",
                    "a photo of a person wearing a long-sleeved top"),
    "LongSleeve": ("a photo of a person wearing a long-sleeved top",
                   "a photo of a person wearing a short-sleeved top"),
    "UpperStride": ("a photo of a person wearing a striped top", "a photo of a person wearing a top without stripes"),
    "UpperLogo": ("a photo of a person wearing a top with a logo", "a photo of a person wearing a top without a logo"),
    "UpperPlaid": ("a photo of a person wearing a plaid top", "a photo of a person wearing a top without plaid"),
    "UpperSplice": ("a photo of a person wearing a spliced top", "a photo of a person wearing a plain top"),
    "LowerStripe": ("a photo of a person wearing striped trousers",
                    "a photo of a person wearing trousers without stripes"),
    "LowerPattern": ("a photo of a person wearing patterned trousers", "a photo of a person wearing plain trousers"),
    "LongCoat": ("a photo of a person wearing a long coat", "a photo of a person without a long coat"),
    "Trousers": ("a photo of a person wearing trousers", "a photo of a person not wearing trousers"),
    "Shorts": ("a photo of a person wearing shorts", "a photo of a person not wearing shorts"),
    "Skirt&Dress": ("a photo of a person wearing a skirt or a dress",
                    "a photo of a person wearing neither a skirt nor a dress"),
    "boots": ("a photo of a person wearing boots", "a photo of a person not wearing boots"),
}


def attribute_words(name: str) -> str:
    """``"upperBodyLogo"`` -> ``"upper body logo"``; ``"Skirt&Dress"`` -> ``"skirt or dress"``."""
    text = name.replace("&", " or ")
    text = re.sub(r"[_\-/]+", " ", text)
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    text = re.sub(r"(?<=[A-Za-z])(?=[0-9])", " ", text)
    return " ".join(text.lower().split())


def attribute_prompt(name: str) -> tuple[str, str]:
    """The (positive, negative) sentence pair for one attribute name."""
    if name in PA100K_PROMPTS:
        return PA100K_PROMPTS[name]
    words = attribute_words(name) or name
    return f"{PREFIX} with {words}", f"{PREFIX} without {words}"


def attribute_prompts(names: Sequence[str], overrides: dict[str, Sequence[str]] | None = None
                      ) -> list[tuple[str, str]]:
    """Pairs for ``names`` in order; ``overrides`` maps a name to its own ``[positive, negative]`` pair."""
    overrides = overrides or {}
    return [tuple(overrides[n]) if n in overrides else attribute_prompt(n) for n in names]  # type: ignore[misc]
