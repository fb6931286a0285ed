"""Captions in the style of SPAC: several annotator styles, a template prompt caption, phrase spans.

A caption is built as a list of segments ``(text, slot)`` where ``slot`` is one of the six
SYNTH-PEDES slots (:data:`~plipbench.data.synth.vocab.SLOTS`) for an attribute phrase and
``None`` for connecting words. Joining the segments gives the caption and, for free, the exact
character span ``[start, end, slot]`` of every attribute phrase (what IAP pre-training masks).

Styles imitate different human annotators (word order, synonyms, sentence structure, omission
of minor attributes): ``plain`` and ``narrative`` are the two SPAC styles of SYNTH-PEDES,
``detailed`` is ICFG-like (long, every attribute, the viewpoint), ``terse`` is short and
RSTPReid-like. The prompt caption fills a sentence template with the six-slot phrases.
"""

from __future__ import annotations

import re
import string

import numpy as np

from plipbench.data.synth.identity import Identity

Segment = tuple[str, str | None]
STYLES: tuple[str, ...] = ("plain", "narrative", "detailed", "terse")


def _pronoun(i: Identity) -> str:
    return "she" if i.gender == "female" else "he"


def _possessive(i: Identity) -> str:
    return "her" if i.gender == "female" else "his"


def gender_phrase(i: Identity, rng: np.random.Generator | None = None) -> str:
    female = i.gender == "female"
    if i.age == "child":
        base = ["girl"] if female else ["boy"]
    elif i.age == "elderly":
        base = ["elderly woman", "old woman", "old lady"] if female else ["elderly man", "old man"]
    else:
        base = ["woman", "lady", "young woman"] if female else ["man", "guy", "young man"]
    return base[0] if rng is None else base[int(rng.integers(len(base)))]


def hair_phrase(i: Identity) -> str | None:
    if i.hair_style == "bald":
        return "a bald head"
    length = {"short": "short", "medium": "shoulder-length", "long": "long", "ponytail": "a ponytail of"}[
        i.hair_style
    ]
    if i.hair_style == "ponytail":
        return f"{i.hair_colour} hair in a ponytail"
    return f"{length} {i.hair_colour} hair"


def headwear_phrase(i: Identity) -> str | None:
    return None if i.headwear == "none" else f"a {i.headwear_colour} {i.headwear}"


def glasses_phrase(i: Identity) -> str | None:
    return None if i.glasses == "none" else ("sunglasses" if i.glasses == "sunglasses" else "glasses")


_UPPER_SYN = {
    "t-shirt": ("t-shirt", "tee", "t-shirt"),
    "shirt": ("shirt", "long-sleeved shirt", "button-up shirt"),
    "sweater": ("sweater", "jumper", "pullover"),
    "jacket": ("jacket", "jacket", "zip-up jacket"),
    "coat": ("long coat", "coat", "long overcoat"),
    "tank top": ("tank top", "sleeveless top", "vest top"),
    "dress": ("dress", "dress", "dress"),
}
_LOWER_SYN = {
    "trousers": ("trousers", "pants", "slacks"),
    "jeans": ("jeans", "denim jeans", "jeans"),
    "shorts": ("shorts", "shorts", "short pants"),
    "skirt": ("skirt", "skirt", "knee-length skirt"),
    "dress": ("dress", "dress", "dress"),
}
_SHOE_SYN = {
    "sneakers": ("sneakers", "trainers", "sports shoes"),
    "leather shoes": ("leather shoes", "dress shoes", "shoes"),
    "boots": ("boots", "boots", "ankle boots"),
    "sandals": ("sandals", "sandals", "open sandals"),
}


def _pick(options: tuple[str, ...], rng: np.random.Generator | None) -> str:
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def upper_phrase(i: Identity, rng: np.random.Generator | None = None) -> str:
    kind = _pick(_UPPER_SYN[i.upper_type], rng)
    c, c2 = i.upper_colour, i.upper_colour2
    if i.upper_pattern == "stripes":
        return f"{c} and {c2} striped {kind}"
    if i.upper_pattern == "plaid":
        return f"{c} plaid {kind}"
    if i.upper_pattern == "logo":
        return f"{c} {kind} with a {c2} logo"
    if i.upper_pattern == "splice":
        return f"{c2} and {c} two-tone {kind}"
    return f"{c} {kind}"


def lower_phrase(i: Identity, rng: np.random.Generator | None = None) -> str | None:
    if i.lower_type == "dress":
        return None  # the dress is the upper phrase
    kind = _pick(_LOWER_SYN[i.lower_type], rng)
    extra = {"plain": "", "stripe": " with side stripes", "pattern": " with a checked pattern"}[
        i.lower_pattern
    ]
    return f"{i.lower_colour} {kind}{extra}"


def shoes_phrase(i: Identity, rng: np.random.Generator | None = None) -> str:
    return f"{i.shoes_colour} {_pick(_SHOE_SYN[i.shoes_type], rng)}"


def belongings_phrase(i: Identity, view: str | None = None) -> str | None:
    """The carried things; a held object only when it can be seen (not from behind)."""
    parts = []
    if i.bag != "none":
        parts.append(f"a {i.bag_colour} {i.bag}")
    if i.held_object != "none" and view != "back":
        parts.append(f"a {i.held_colour} {i.held_object}")
    return " and ".join(parts) if parts else None


def head_phrase(i: Identity) -> str | None:
    """The SYNTH-PEDES head slot: the headwear when worn, else the hair (None when bald)."""
    if i.headwear != "none":
        return headwear_phrase(i)[2:]  # type: ignore[index]
    if i.hair_style == "bald":
        return None
    return f"{i.hair_colour} hair"


def attribute_phrases(i: Identity, view: str | None = None) -> list[str]:
    """The six SYNTH-PEDES slot phrases ("unknown" when absent); never contain a comma."""
    bel = belongings_phrase(i, view)
    phrases = [
        gender_phrase(i),
        head_phrase(i) or "unknown",
        upper_phrase(i),
        lower_phrase(i) or "unknown",
        shoes_phrase(i),
        re.sub(r"^an? ", "", bel.split(" and ")[0]) if bel else "unknown",
    ]
    return phrases


def attribute_string(i: Identity, view: str | None = None) -> str:
    return ",".join(attribute_phrases(i, view))


def join_segments(segments: list[Segment]) -> tuple[str, list[list]]:
    """Concatenate segments; return the text (first letter capitalised) and ``[start, end, slot]`` spans."""
    text, spans, pos = [], [], 0
    for seg, slot in segments:
        if slot is not None:
            spans.append([pos, pos + len(seg), slot])
        text.append(seg)
        pos += len(seg)
    out = "".join(text)
    return (out[:1].upper() + out[1:]), spans


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def caption_segments(i: Identity, view: str, style: str, rng: np.random.Generator) -> list[Segment]:
    """One caption of ``i`` in ``view`` written in ``style`` (one of :data:`STYLES`)."""
    he, his = _pronoun(i), _possessive(i)
    g = gender_phrase(i, rng)
    hair, hat, glasses = hair_phrase(i), headwear_phrase(i), glasses_phrase(i)
    if view == "back":
        glasses = None
    up, lo, sh = upper_phrase(i, rng), lower_phrase(i, rng), shoes_phrase(i, rng)
    bel = belongings_phrase(i, view)
    drop = 0.25 if style in ("narrative", "terse") else 0.1
    if rng.random() < drop:
        sh = None  # annotators often skip the shoes
    if rng.random() < drop:
        glasses = None
    s: list[Segment] = []
    if style == "plain":
        s += [(f"{_article(g)} ", None), (g, "gender")]
        if hair:
            s += [(" with ", None), (hair, "head")]
        if glasses:
            s += [(" and ", None), (glasses, "head")]
        s += [(" is wearing ", None), (_article(up) + " " + up, "upper")]
        if hat:
            s += [(", ", None), (hat, "head")]
        if lo:
            s += [(" and " if not sh else ", ", None), (lo, "lower")]
        if sh:
            s += [(" and ", None), (sh, "shoes")]
        s += [(". ", None)]
        if bel:
            s += [(f"{he} is carrying ", None), (bel, "belongings"), (".", None)]
    elif style == "narrative":
        s += [("the ", None), (g, "gender"), (" is dressed in ", None), (_article(up) + " " + up, "upper")]
        if lo:
            s += [(" over ", None), (lo, "lower")]
        s += [(". ", None)]
        bits = [(x, "head") for x in (hair, hat, glasses) if x]
        if bits:
            s += [(f"{he} has ", None)]
            for k, b in enumerate(bits):
                s += [((", " if k < len(bits) - 1 else " and ") if k else "", None), b]
            s += [(". ", None)]
        if bel:
            s += [
                (f"{he} holds " if "bag" not in bel and "backpack" not in bel else f"{he} carries ", None),
                (bel, "belongings"),
                (". ", None),
            ]
        if sh:
            s += [(f"{he} wears ", None), (sh, "shoes"), (f" on {his} feet.", None)]
    elif style == "detailed":
        facing = {
            "front": "walking towards the camera",
            "side": "walking past the camera",
            "back": "walking away from the camera",
        }[view]
        s += [("this ", None), (g, "gender"), (f" is {facing}. ", None)]
        if hair:
            s += [(f"{he} has ", None), (hair, "head"), (". ", None)]
        if hat:
            s += [(f"{he} wears ", None), (hat, "head"), (" on " + his + " head. ", None)]
        if glasses:
            s += [(f"{he} is wearing ", None), (glasses, "head"), (". ", None)]
        s += [(f"{he} is wearing ", None), (_article(up) + " " + up, "upper")]
        if lo:
            s += [(" on the upper body and ", None), (lo, "lower"), (" on the lower body", None)]
        s += [(". ", None)]
        if sh:
            s += [(f"on {his} feet are ", None), (sh, "shoes"), (". ", None)]
        s += (
            [(f"{he} is carrying ", None), (bel, "belongings"), (".", None)]
            if bel
            else [(f"{he} carries nothing in {his} hands.", None)]
        )
    elif style == "terse":
        s += [(f"{_article(g)} ", None), (g, "gender"), (" in ", None), (up, "upper")]
        if lo:
            s += [(" and ", None), (lo, "lower")]
        if bel:
            s += [(" with ", None), (bel, "belongings")]
        if sh:
            s += [(", wearing ", None), (sh, "shoes")]
        s += [(".", None)]
    else:
        raise ValueError(f"unknown caption style {style!r}; expected one of {STYLES}")
    if s and s[-1][1] is None:  # no trailing space
        s[-1] = (s[-1][0].rstrip(), None)
    # sentence-initial pronouns/articles
    out: list[Segment] = []
    cap_next = True
    for text, slot in s:
        if cap_next and text and slot is None:
            text = text[:1].upper() + text[1:]
        cap_next = text.endswith(". ")
        out.append((text, slot))
    return out


# Prompt-caption templates (SYNTH-PEDES "attribute prompt engineering"): slots in braces.
TEMPLATES: tuple[str, ...] = (
    "A {gender} with {head} is wearing a {upper} with {lower} and a pair of {shoes}, carrying a {belongings}.",
    "A {gender} with {head} is wearing a {upper} with {lower} and a pair of {shoes}.",
    "The {gender} wears a {upper} and {lower}, with {shoes} and {head}.",
    "This {gender} has {head} and is dressed in a {upper}, {lower} and {shoes}; a {belongings} is carried.",
    "A {gender} in a {upper} and {lower} walks with a {belongings}.",
    "A {gender} in a {upper} and {lower} is walking.",
    "The {gender} is wearing {shoes}, {lower} and a {upper}.",
    "A {gender} with {head}, a {upper}, {lower} and {shoes}.",
    "There is a {gender} who wears a {upper} and {lower}, and carries a {belongings}.",
    "You can see a {gender} wearing a {upper}, {lower} and {shoes}.",
    "Dressed in a {upper} and {lower}, the {gender} has {head} and wears {shoes}.",
    "A {gender} carrying a {belongings} wears a {upper}, {lower} and {shoes}.",
)


def prompt_caption(phrases: list[str], rng: np.random.Generator) -> tuple[str, list[list]]:
    """Fill a template whose slots are all known ("unknown" phrases are never written)."""
    known = {
        slot
        for slot, p in zip(("gender", "head", "upper", "lower", "shoes", "belongings"), phrases, strict=True)
        if p != "unknown"
    }
    usable = [t for t in TEMPLATES if {f for _, f, _, _ in string.Formatter().parse(t) if f} <= known]
    template = usable[int(rng.integers(len(usable)))] if usable else "A {gender} wearing a {upper}."
    values = dict(zip(("gender", "head", "upper", "lower", "shoes", "belongings"), phrases, strict=True))
    segs: list[Segment] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        value = values[field] if field else ""
        if field == "head" and not value.endswith("hair") and literal.endswith(" with "):
            literal += "a "  # "with a red cap" but "with black hair"
        if value[:1] in ("a", "e", "i", "o", "u") and literal.endswith(" a "):
            literal = literal[:-2] + "an "
        if literal:
            segs.append((literal, None))
        if field:
            segs.append((value, field))
    return join_segments(segs)


def tokens(caption: str) -> list[str]:
    """Lower-case word tokens, like the ``processed_tokens`` of CUHK-PEDES / ICFG-PEDES."""
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", caption.lower())
