"""Synthetic presets: each one is a domain (own identity pool, scenes, caption styles, cameras).

Sizes are small versions of the real datasets with the real ratios, chosen so that every
preset generates in a few seconds on one laptop core (see ``benchmarks/synth_speed.py``).
Split fractions are over identities (splits never share an identity).
"""

from __future__ import annotations

from dataclasses import dataclass

from plipbench.data.synth.vocab import SCENES


@dataclass(frozen=True)
class SynthPreset:
    """A typed description of one synthetic dataset preset."""

    name: str
    task: str  # "pretrain" | "text-reid" | "image-reid" | "attributes" | "parsing" | "person-search"
    description: str
    layout: str  # default on-disk layout
    layouts: tuple[str, ...]  # every layout this preset can be written in
    identities: int
    images_per_id: int
    splits: tuple[tuple[str, float], ...]  # identity split -> fraction; "test" feeds query/gallery for ReID
    cameras: int  # fixed camera looks; 0 = a fresh look per image
    scenes: tuple[str, ...]
    caption_styles: tuple[str, ...] = ()
    captions_per_image: int = 0
    extra_caption_probability: float = 0.0  # chance of one more caption (SYNTH-PEDES has 2-3)
    prompt_caption: bool = False
    harsh: float = 1.0  # strength of lighting / blur / noise / occlusion
    views: tuple[float, float, float] = (0.4, 0.2, 0.4)  # front, side, back probabilities
    distractor_fraction: float = 0.0  # pid-0 gallery images, as a fraction of the gallery
    junk_fraction: float = 0.0  # Market "-1" images, as a fraction of the gallery
    min_images_per_id: int = 1
    # person search (multi-person frames, plipbench.data.synth.search): images_per_id = most frames per identity
    walkers_per_frame: float = 0.0  # unlabelled persons per frame (Poisson mean)
    small_fraction: float = 0.0  # share of boxes drawn small (w <= 19 px at the default size)
    gallery_sizes: tuple[int, ...] = ()  # CUHK-SYSU TestG{size}.mat files written
    heavy_occlusion: tuple[tuple[str, float], ...] = ()  # record split -> chance of a heavy occluder (occluded ReID)
    partial_query: bool = False  # queries keep only part of the body (partial ReID)
    queries_per_id: int = 0  # test-only sets: the first images of every identity are its queries (camera 0), the
    # rest its gallery (camera 1); 0: queries drawn per camera (Market style)


PRESETS: dict[str, SynthPreset] = {
    p.name: p
    for p in (
        SynthPreset(
            name="synth-pedes",
            task="pretrain",
            description="SYNTH-PEDES in miniature: image-text pre-training corpus, all split 'train'",
            layout="synth-pedes",
            layouts=("synth-pedes",),
            identities=1000,
            images_per_id=8,
            splits=(("train", 1.0),),
            cameras=0,
            scenes=SCENES,
            caption_styles=("plain", "narrative"),
            captions_per_image=2,
            extra_caption_probability=0.3,
            prompt_caption=True,
        ),
        SynthPreset(
            name="synth-cuhk",
            task="text-reid",
            description="CUHK-PEDES-like text ReID: 300/40/300 ids, 3 images/id, 2 captions/image",
            layout="cuhk-pedes",
            layouts=("cuhk-pedes", "rstpreid"),
            identities=640,
            images_per_id=3,
            splits=(("train", 300 / 640), ("val", 40 / 640), ("test", 300 / 640)),
            cameras=0,
            scenes=("street", "campus", "plaza", "indoor"),
            caption_styles=("narrative", "terse"),
            captions_per_image=2,
        ),
        SynthPreset(
            name="synth-icfg",
            task="text-reid",
            description="ICFG-PEDES-like text ReID: 300 train / 300 test ids, long detailed captions, 1 caption/image",
            layout="icfg-pedes",
            layouts=("icfg-pedes", "rstpreid"),
            identities=600,
            images_per_id=5,
            splits=(("train", 0.5), ("test", 0.5)),
            cameras=15,
            scenes=("station", "street", "night", "indoor"),
            caption_styles=("detailed",),
            captions_per_image=1,
            harsh=1.2,
        ),
        SynthPreset(
            name="synth-market",
            task="image-reid",
            description="Market-1501-like image ReID: 6 cameras, 150 train / 250 test ids, pid-0 distractors, junk",
            layout="market1501",
            layouts=("market1501", "cuhk03-np", "msmt17"),
            identities=400,
            images_per_id=8,
            splits=(("train", 150 / 400), ("test", 250 / 400)),
            cameras=6,
            scenes=("street", "campus", "plaza"),
            distractor_fraction=0.05,
            junk_fraction=0.04,
            min_images_per_id=2,
        ),
        SynthPreset(
            name="synth-duke",
            task="image-reid",
            description="DukeMTMC-reID-like image ReID: 8 cameras, winter/park scenes, 150 train / 150 test / 50 "
                        "gallery-only ids",
            layout="dukemtmc",
            layouts=("dukemtmc", "msmt17"),
            identities=350,
            images_per_id=8,
            splits=(("train", 150 / 350), ("test", 150 / 350), ("gallery", 50 / 350)),
            cameras=8,
            scenes=("park", "night", "campus", "indoor"),
            harsh=1.3,
            min_images_per_id=2,
        ),
        SynthPreset(
            name="synth-occluded-duke",
            task="image-reid",
            description="Occluded-Duke-like occluded image ReID: synth-duke's cameras and sizes, every query behind a "
                        "heavy occluder, 10 % of the gallery and of train too",
            layout="occluded-duke",
            layouts=("occluded-duke", "occluded-duke-lists"),
            identities=350,
            images_per_id=8,
            splits=(("train", 150 / 350), ("test", 150 / 350), ("gallery", 50 / 350)),
            cameras=8,
            scenes=("park", "night", "campus", "indoor"),
            harsh=1.3,
            min_images_per_id=2,
            heavy_occlusion=(("query", 1.0), ("gallery", 0.1), ("train", 0.1)),
        ),
        SynthPreset(
            name="synth-occluded-reid",
            task="image-reid",
            description="Occluded-REID-like test-only set: 100 ids, 5 query images behind heavy occluders and 5 "
                        "whole-body gallery images each, a fresh scene per image",
            layout="occluded-reid",
            layouts=("occluded-reid", "occluded-reid-raw"),
            identities=100,
            images_per_id=10,
            splits=(("test", 1.0),),
            cameras=0,
            scenes=("campus", "plaza", "street", "indoor"),
            min_images_per_id=2,
            heavy_occlusion=(("query", 1.0),),
            queries_per_id=5,
        ),
        SynthPreset(
            name="synth-partial-reid",
            task="image-reid",
            description="Partial-REID-like test-only set: 60 ids, 5 partial-body query images (part of the body "
                        "cropped away) and 5 whole-body gallery images each, a fresh scene per image",
            layout="partial-reid",
            layouts=("partial-reid",),
            identities=60,
            images_per_id=10,
            splits=(("test", 1.0),),
            cameras=0,
            scenes=("campus", "plaza", "street", "indoor"),
            min_images_per_id=2,
            partial_query=True,
            queries_per_id=5,
        ),
        SynthPreset(
            name="synth-pa100k",
            task="attributes",
            description="PA-100K-like attributes: 2,000/250/750 images of distinct people, 26 labels",
            layout="pa100k",
            layouts=("pa100k", "peta-zs", "rap-zs"),
            identities=3000,
            images_per_id=1,
            splits=(("train", 2000 / 3000), ("val", 250 / 3000), ("test", 750 / 3000)),
            cameras=0,
            scenes=SCENES,
            views=(0.4, 0.2, 0.4),
        ),
        SynthPreset(
            name="synth-lip",
            task="parsing",
            description="LIP-like human parsing: 1,200 train / 400 val images of distinct people with exact part "
                        "masks (20 LIP classes; PASCAL-Person-Part's 7 derived from the same drawing)",
            layout="lip",
            layouts=("lip", "lip-schp", "pascal-person-part", "cihp"),
            identities=1600,
            images_per_id=1,
            splits=(("train", 0.75), ("val", 0.25)),
            cameras=0,
            scenes=SCENES,
        ),
        SynthPreset(
            name="synth-cuhk-sysu",
            task="person-search",
            description="CUHK-SYSU-like person search: multi-person frames, 150 train / 100 test identities in "
                        "2-4 frames each, unlabelled walkers, small boxes, TestG50 / TestG100 galleries",
            layout="cuhk-sysu",
            layouts=("cuhk-sysu",),
            identities=250,
            images_per_id=4,
            splits=(("train", 0.6), ("test", 0.4)),
            cameras=0,
            scenes=("street", "campus", "plaza", "indoor", "station"),
            min_images_per_id=2,
            walkers_per_frame=1.0,
            small_fraction=0.12,
            gallery_sizes=(50, 100),
        ),
        SynthPreset(
            name="synth-prw",
            task="person-search",
            description="PRW-like person search: frames of 6 cameras, 120 train / 80 test identities in 2-5 "
                        "frames each, unlabelled walkers (id -2), small boxes, one query per identity and camera",
            layout="prw",
            layouts=("prw",),
            identities=200,
            images_per_id=5,
            splits=(("train", 0.6), ("test", 0.4)),
            cameras=6,
            scenes=("campus", "street", "plaza"),
            min_images_per_id=2,
            walkers_per_frame=1.2,
            small_fraction=0.12,
        ),
    )
}

TEXT_LAYOUTS = ("synth-pedes", "cuhk-pedes", "icfg-pedes", "rstpreid")
WRITABLE_LAYOUTS = ("synth-pedes", "cuhk-pedes", "icfg-pedes", "rstpreid", "market1501", "dukemtmc", "msmt17",
                    "cuhk03-np", "pa100k", "lip", "lip-schp", "pascal-person-part", "cihp", "cuhk-sysu", "prw",
                    "occluded-duke", "occluded-duke-lists", "peta-zs", "rap-zs", "occluded-reid",
                    "occluded-reid-raw", "partial-reid")
# a writer layout that is a variant of a reader layout (the reader finds the variant)
READER_LAYOUTS = {"lip-schp": "lip", "occluded-duke-lists": "occluded-duke", "occluded-reid-raw": "occluded-reid"}
PARSING_LAYOUTS = ("lip", "lip-schp", "pascal-person-part", "cihp")
SEARCH_LAYOUTS = ("cuhk-sysu", "prw")


def split_sizes(total: int, splits: tuple[tuple[str, float], ...]) -> list[tuple[str, int]]:
    """Identities per split: rounded fractions that sum to ``total``, each at least 1."""
    sizes = [max(1, round(total * f)) for _, f in splits]
    while sum(sizes) > total:
        sizes[sizes.index(max(sizes))] -= 1
    sizes[0] += total - sum(sizes)
    return [(name, n) for (name, _), n in zip(splits, sizes, strict=True)]
