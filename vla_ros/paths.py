"""Where the package's launch, config and urdf files live (source tree or installed share dir)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "vla_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def ensure_ament_prefix() -> None:
    """Make ament_index see a pip-installed package: add this interpreter's prefix to AMENT_PREFIX_PATH."""
    marker = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    current = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if marker.exists() and sys.prefix not in current:
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(current + [sys.prefix])


def share_dir() -> Path:
    """The source checkout when running from one (edits are live), else the ament share directory."""
    if (_SOURCE_ROOT / "package.xml").exists() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    ensure_ament_prefix()
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE))


def resolve(path: str | Path) -> Path:
    """An absolute path, or one relative to the share directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else share_dir() / p
