"""The configs shipped with the package (``configs/`` of the source tree, package data once installed)."""
import os
from importlib import resources
from typing import List

from common_data.errors import UserError


def configs_dir() -> str:
    """The folder of the shipped ``*.yaml`` configs."""
    return str(resources.files("esrgan_twin") / "configs")


def shipped_configs() -> List[str]:
    """Names of the shipped configs (file names without ``.yaml``), sorted."""
    folder = configs_dir()
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml")) if os.path.isdir(folder) else []


def resolve_config(name_or_path: str) -> str:
    """A config path as given when it exists, else the shipped config of that name (``.yaml`` optional).

    A bare name that is neither -> one UserError listing the shipped names.
    """
    if os.path.exists(name_or_path):
        return name_or_path
    stem = os.path.basename(name_or_path)
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    if os.sep not in name_or_path and stem in shipped_configs():
        return os.path.join(configs_dir(), stem + ".yaml")
    raise UserError(f"config file not found: {name_or_path}; give a YAML path or the name of a shipped config "
                    f"({', '.join(shipped_configs())})")
