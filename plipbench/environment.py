"""Facts about this machine and checkout, for ``plipbench doctor`` and for result provenance."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = (
    "plipbench", "torch", "torchvision", "transformers", "timm", "torchreid", "open_clip_torch",
    "tokenizers", "safetensors", "numpy", "scipy", "scikit-learn", "pandas", "pillow",
    "opencv-python-headless", "rich", "typer", "pydantic", "pyyaml", "matplotlib",
)

DATA_ENV = "PLIPBENCH_DATA"


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, ``None`` when absent (reads metadata, imports nothing)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware_info() -> dict[str, object]:
    """CPU, threads and accelerator as torch sees them."""
    import torch

    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda_version"] = torch.version.cuda
    return info


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the checkout holding ``path`` (default: this package), with ``-dirty`` if modified."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def data_root() -> Path:
    """Where real datasets are looked for: ``$PLIPBENCH_DATA``, default ``~/datasets``."""
    return Path(os.environ.get(DATA_ENV, Path.home() / "datasets")).expanduser()


def dataset_status() -> list[dict[str, str]]:
    """For every known real layout: the root found under :func:`data_root` and whether it checks out."""
    from plipbench.data.check import check_dataset
    from plipbench.data.readers import READERS, find_root

    rows = []
    base = data_root()
    for layout in sorted(READERS):
        root = find_root(layout, base)
        if root is None:
            rows.append({"layout": layout, "root": "", "status": f"not found under {base}"})
            continue
        report = check_dataset(layout, root, quick=True)
        rows.append({
            "layout": layout,
            "root": str(root),
            "status": "valid" if report.ok else f"{len(report.problems)} problem(s)",
        })
    return rows


def environment_report() -> dict[str, object]:
    return {
        "packages": package_versions(),
        "hardware": hardware_info(),
        "git_commit": git_commit(),
        "data_root": str(data_root()),
        "datasets": dataset_status(),
    }


CACHE_ENV = "PLIPBENCH_CACHE"


def cache_root() -> Path:
    """Where generated data, pre-trained mini models and features are cached: ``$PLIPBENCH_CACHE``,
    default ``~/.cache/plipbench``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "plipbench")).expanduser()
