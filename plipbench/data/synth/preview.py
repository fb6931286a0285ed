"""A contact sheet of a synthetic copy: identities in rows, their images across cameras/views in columns.

Each row shows the first images of one identity (read back from the written files, so the sheet
shows exactly what is on disk) with its first caption (or its six-slot attribute string when the
layout has no captions) beside it.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

from plipbench.data.images import open_rgb
from plipbench.errors import DataError
from plipbench.io import atomic_write_bytes


def contact_sheet(
    root: Path | str, out_file: Path | str | None = None, *, rows: int = 6, columns: int = 6, zoom: int = 2
) -> Path:
    """Write a PNG contact sheet of the copy at ``root`` (default ``root/preview.png``) and return its path."""
    from PIL import Image, ImageDraw, ImageFont

    from plipbench.data.synth.generate import SIDECAR

    root = Path(root)
    sidecar_path = root / SIDECAR
    if not sidecar_path.is_file():
        raise DataError(
            sidecar_path, "missing: not a plipbench synth copy (run `plipbench data synth` first)"
        )
    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    by_person: dict[tuple, list[str]] = {}
    for rel, entry in sidecar.items():
        if entry.get("junk") or entry["pid"] == 0:
            continue
        key = tuple(sorted(entry["identity"].items()))
        by_person.setdefault(key, []).append(rel)
    people = list(by_person.values())[:rows]
    # prefer different cameras / views first in each row
    first = open_rgb(root / people[0][0])
    w, h = first.size[0] * zoom, first.size[1] * zoom
    text_w, pad = 420, 6
    sheet = Image.new(
        "RGB", (pad + columns * (w + pad) + text_w, pad + len(people) * (h + pad)), (245, 245, 245)
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, paths in enumerate(people):
        ordered = sorted(paths, key=lambda p: (sidecar[p]["camera"], sidecar[p]["viewpoint"]))
        seen, row = set(), []
        for p in ordered:  # one image per (camera, view) first, then the rest
            key = (sidecar[p]["camera"], sidecar[p]["viewpoint"])
            if key not in seen:
                seen.add(key)
                row.append(p)
        row += [p for p in ordered if p not in row]
        y = pad + r * (h + pad)
        for c, rel in enumerate(row[:columns]):
            img = open_rgb(root / rel).resize((w, h), Image.NEAREST)
            sheet.paste(img, (pad + c * (w + pad), y))
            e = sidecar[rel]
            label = f"{e['viewpoint'][0].upper()}" + (f" c{e['camera'] + 1}" if e["camera"] >= 0 else "")
            draw.text((pad + c * (w + pad) + 2, y + 2), label, fill=(255, 255, 0), font=font)
        e = sidecar[row[0]]
        lines = [
            f"pid {e['pid']} ({e['split']})",
            *textwrap.wrap(e["attribute_string"].replace(",", ", "), 64),
        ]
        if e["captions"]:
            lines += ["", *textwrap.wrap(e["captions"][0], 64)]
        draw.multiline_text(
            (pad + columns * (w + pad) + 4, y + 4),
            "\n".join(lines[: max(1, h // 12)]),
            fill=(20, 20, 20),
            font=font,
            spacing=2,
        )
    out_file = Path(out_file) if out_file is not None else root / "preview.png"
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(out_file, buf.getvalue())
    return out_file
