"""Reference leaderboards: numbers reported in papers, shown beside (never mixed with) plipbench's own.

``reference_results("plip-paper")`` loads ``reference_plip_paper.yaml`` (PLIP paper Tabs. 1, 2, 3, 18, percent as
printed). Every row it produces carries the label "reported in the PLIP paper, not reproduced".
``reference_results("human-centric")`` loads ``reference_human_centric.yaml``: the published full fine-tune numbers
for parsing (SCHP, SOLIDER), person search (OIM, SeqNet, GLCNet, SOLIDER, PLIP Tab. 9), Occluded-Duke (TransReID)
and PETA_ZS / RAP_ZS (Rethinking_of_PAR, SOLIDER), each row naming its source and labelled "reported by the source
named in the row, not reproduced".
``reference_results("recipes")`` loads ``reference_recipes.yaml``: the baseline numbers that the reference code of
plipbench's fine-tune recipes reports (BoT R50, TransReID ViT-B and its person-pretrained variants, IRRA, PLIP's
CMPM/C, Rethinking_of_PAR R50, SOLIDER-PAR), one row per (recipe, backbone, dataset, metric), each naming its
``source`` (repository@commit:file) and its ``recipe``, labelled "reported by the recipe's reference code named in
the row, not reproduced". They are the sources' own protocols (selection on test where the source does so), not
plipbench runs of the recipe.

**Task-name mapping.** A plipbench result is put beside a reference number when its *paper task*, its protocol
and its main-score metric all equal the reference entry's. The paper task of a result is found, in order, from
``details["paper_task"]`` (an explicit override), then ``dataset``, then ``task``: the name is lower-cased, every
non-alphanumeric character dropped, and the longest known alias that starts it wins:

=====================  ===========================================================
paper task             aliases (normalised)
=====================  ===========================================================
cuhk-pedes             cuhkpedes, cuhk
icfg-pedes             icfgpedes, icfg
rstpreid               rstpreid, rstp
market1501             market1501, market
dukemtmc               dukemtmcreid, dukemtmc, duke
msmt17                 msmt17, msmt
pa100k                 pa100k
peta                   peta
cuhk-sysu              cuhksysu, sysu
prw                    prw
lip                    lip
pascal-person-part     pascalpersonpart, pascal
cihp                   cihp
occluded-duke          occludeddukemtmc, occludedduke
occluded-reid          occludedreid
partial-reid           partialreid
peta-zs                petazs
rap-zs                 rapzs
rapv1                  rapv1
rapv2                  rapv2
=====================  ===========================================================

Cross-dataset text ReID (Tab. 3) maps to ``"<source>-><target>"`` (``cuhk-pedes->icfg-pedes``) when the task or
dataset name holds ``->``, ``→``, ``2`` or ``to`` between two known names (``cuhk-pedes->icfg-pedes``,
``cuhk2icfg``, ``cuhk_to_icfg``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.results import TaskResult

REFERENCE_FILES = {"plip-paper": Path(__file__).with_name("reference_plip_paper.yaml"),
                   "human-centric": Path(__file__).with_name("reference_human_centric.yaml"),
                   "recipes": Path(__file__).with_name("reference_recipes.yaml")}
REFERENCE_LABEL = "reported in the PLIP paper, not reproduced"
REFERENCE_LABELS = {"plip-paper": REFERENCE_LABEL,
                    "human-centric": "reported by the source named in the row, not reproduced",
                   "recipes": "reported by the recipe's reference code named in the row, not reproduced"}
# the word after the table in a row label: the PLIP file is one paper; the other names READMEs and papers
_ROW_SUFFIX = {"plip-paper": "paper", "human-centric": "reported", "recipes": "reported"}
REFERENCE_FIELDS = ("table", "section", "dataset", "paper_task", "task_family", "metric", "protocol", "method",
                    "pretraining", "backbone", "value")

PAPER_TASK_ALIASES: dict[str, tuple[str, ...]] = {
    "cuhk-pedes": ("cuhkpedes", "cuhk"),
    "icfg-pedes": ("icfgpedes", "icfg"),
    "rstpreid": ("rstpreid", "rstp"),
    "market1501": ("market1501", "market"),
    "dukemtmc": ("dukemtmcreid", "dukemtmc", "duke"),
    "msmt17": ("msmt17", "msmt"),
    "pa100k": ("pa100k",),
    "peta": ("peta",),
    "cuhk-sysu": ("cuhksysu", "sysu"),
    "prw": ("prw",),
    "lip": ("lip",),
    "pascal-person-part": ("pascalpersonpart", "pascal"),
    "cihp": ("cihp",),
    "occluded-duke": ("occludeddukemtmc", "occludedduke"),
    "occluded-reid": ("occludedreid",),
    "partial-reid": ("partialreid",),
    "peta-zs": ("petazs",),
    "rap-zs": ("rapzs",),
    "rapv1": ("rapv1",),
    "rapv2": ("rapv2",),
}
# longest alias first, so "cuhksysu" wins over "cuhk"
_ALIASES = sorted(((alias, task) for task, aliases in PAPER_TASK_ALIASES.items() for alias in aliases),
                  key=lambda pair: -len(pair[0]))
_CROSS = re.compile(r"^(?P<src>.+?)(?:->|→|_to_|-to-|\bto\b|2)(?P<dst>[^2]+)$", re.IGNORECASE)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def paper_task_of_name(name: str) -> str | None:
    """``"CUHK-PEDES"`` -> ``"cuhk-pedes"``; ``"cuhk2icfg"`` -> ``"cuhk-pedes->icfg-pedes"``; unknown -> None."""
    cross = _CROSS.match(name.strip())
    if cross:
        src, dst = _single(cross.group("src")), _single(cross.group("dst"))
        if src and dst and src != dst:
            return f"{src}->{dst}"
    return _single(name)


def _single(name: str) -> str | None:
    normalised = _normalise(name)
    for alias, task in _ALIASES:
        if normalised.startswith(alias):
            return task
    return None


def paper_task_of(result: TaskResult) -> str | None:
    """The paper task a result is compared with (see the module docstring), or None."""
    explicit = result.details.get("paper_task")
    if isinstance(explicit, str) and explicit:
        return explicit
    for name in (result.dataset, result.task):
        task = paper_task_of_name(name)
        if task is not None:
            return task
    return None


@lru_cache(maxsize=4)
def _load_entries(name: str) -> tuple[dict[str, Any], ...]:
    import yaml

    path = REFERENCE_FILES[name]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DataError(path, f"cannot read the reference numbers ({err})") from err
    entries = raw.get("entries") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise DataError(path, "expected a mapping with an 'entries' list")
    for i, entry in enumerate(entries):
        missing = [field for field in REFERENCE_FIELDS if field not in entry]
        if missing or not isinstance(entry["value"], (int, float)):
            raise DataError(path, f"entry {i} lacks {missing} or has a non-numeric value")
    return tuple(entries)


def reference_label(name: str | None) -> str:
    """The label every row of reference ``name`` carries (the PLIP paper's when ``name`` is None or unknown)."""
    return REFERENCE_LABELS.get(name or "plip-paper", REFERENCE_LABEL)


def reference_results(name: str = "plip-paper") -> Any:
    """The reference numbers as a pandas DataFrame, one row per (table, row, dataset, metric).

    Columns: table, section, dataset, paper_task, task_family, metric, protocol, method, pretraining, backbone,
    ``value`` (**percent as printed**, unlike plipbench's fractions), ``label`` ("reported in the PLIP paper, not
    reproduced", or the other file's label), ``source`` (the cited file or table; the PLIP file's is its table),
    ``row_label`` (a display name for the paper's row); ``"recipes"`` adds ``recipe`` (the plipbench recipe whose
    reference code reports the number).
    """
    import pandas as pd

    if name not in REFERENCE_FILES:
        raise ConfigError(f"unknown reference {name!r}; known: {', '.join(sorted(REFERENCE_FILES))}")
    entries = list(_load_entries(name))
    frame = pd.DataFrame(entries, columns=list(REFERENCE_FIELDS), dtype=object)
    frame["value"] = frame["value"].astype(float)
    frame["label"] = reference_label(name)
    frame["source"] = [entry.get("source", f"PLIP {entry['table']}") for entry in entries]
    frame["row_label"] = [reference_row_label(entry, _ROW_SUFFIX[name]) for entry in entries]
    if name == "recipes":  # the other references' frames (and their JSON) stay as they were
        frame["recipe"] = [entry["recipe"] for entry in entries]
    return frame


def reference_row_label(entry: dict[str, Any], suffix: str = "paper") -> str:
    """A display name for the paper's row, naming the table it came from.

    Tabs. 1 and 2: ``"PLIP RN50 + CMPM/C (Tab. 1, paper)"`` (pre-training, backbone, downstream method); Tab. 18
    (every method pre-trained on SYNTH-PEDES): ``"CLIP RN50 on SYNTH-PEDES (Tab. 18, paper)"``; Tab. 3:
    ``"RaSa (Tab. 3, paper)"``. The human-centric file: ``"SOLIDER Swin-B + SCHP (SOLIDER README, reported)"``.
    """
    method, backbone, pretraining = entry.get("method"), entry.get("backbone"), entry.get("pretraining")
    if entry["table"] == "Tab. 18":
        head = f"{method} {backbone} on {pretraining}"
    else:
        head = " ".join(p for p in (pretraining, backbone) if p)
        if method:
            head = f"{head} + {method}" if head else method
    return f"{head} ({entry['table']}, {suffix})"
