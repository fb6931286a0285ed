"""The typed records every dataset reader returns, whatever the layout on disk.

A reader turns one dataset layout (Market-1501, CUHK-PEDES, PA-100K, ...) into a
:class:`PersonDataset`: a flat list of :class:`PersonRecord` plus dataset-level facts
(attribute names, the layout, the root). The synthetic generator writes the same layouts, so
the same reader reads a real and a synthetic copy.

Conventions (shared by every reader):

* ``pid`` is the identity label as the reference loaders keep it for evaluation (raw ids for
  query / gallery / test; the reference relabelling of train ids is *not* applied: a consumer
  that trains a classifier relabels with :meth:`PersonDataset.relabel`). ``pid == 0`` in a
  Market-style gallery is a distractor; junk (``-1``) never appears in a record.
* ``camid`` is 0-based, ``-1`` when the layout has no camera.
* ``split`` is one of :data:`SPLITS`.
* ``captions`` holds the free-text descriptions (text ReID, SYNTH-PEDES); ``prompt_captions``
  the template captions of SYNTH-PEDES; ``attribute_phrases`` the six-slot SYNTH-PEDES string
  split into its phrases.
* ``attributes`` is the binary (0/1) label vector in the order of
  :attr:`PersonDataset.attribute_names` (attribute datasets), else ``None``.
* ``mask_path`` is the image's label map (human parsing datasets: an 8-bit PNG of class ids in the order of
  :attr:`PersonDataset.class_names`, 255 = ignore), else ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test", "query", "gallery")


@dataclass(frozen=True)
class PersonRecord:
    image_path: Path
    pid: int
    camid: int = -1
    split: str = "train"
    captions: tuple[str, ...] = ()
    attributes: tuple[int, ...] | None = None
    prompt_captions: tuple[str, ...] = ()
    attribute_phrases: tuple[str, ...] = ()
    mask_path: Path | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")


@dataclass
class PersonDataset:
    """All records of one dataset copy, with the facts that hold for the whole dataset."""

    name: str
    layout: str
    root: Path
    records: list[PersonRecord]
    attribute_names: list[str] | None = None
    options: dict = field(default_factory=dict)  # reader options that change the content
    class_names: list[str] | None = None  # human parsing: the label set of the masks

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PersonRecord]:
        return iter(self.records)

    def split(self, *names: str) -> list[PersonRecord]:
        """Records whose split is one of ``names`` (in file order)."""
        return [r for r in self.records if r.split in names]

    def splits(self) -> dict[str, int]:
        """Number of records per split present."""
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.split] = counts.get(r.split, 0) + 1
        return counts

    def summary(self) -> dict[str, dict[str, int]]:
        """Per split: images, identities, captions, cameras."""
        out: dict[str, dict[str, int]] = {}
        for name in self.splits():
            recs = self.split(name)
            out[name] = {
                "images": len(recs),
                "identities": len({r.pid for r in recs}),
                "captions": sum(len(r.captions) for r in recs),
                "cameras": len({r.camid for r in recs if r.camid >= 0}),
            }
        return out

    @staticmethod
    def relabel(records: Iterable[PersonRecord]) -> dict[int, int]:
        """Map the pids of ``records`` to 0..n-1 in order of first appearance (for classifiers)."""
        mapping: dict[int, int] = {}
        for r in records:
            mapping.setdefault(r.pid, len(mapping))
        return mapping
