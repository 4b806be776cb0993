"""ament_python package, also installable with pip (share/ and lib/vla_ros/ land under the prefix).

Node executables are console scripts (an absolute interpreter path: no activated venv needed). colcon
installs them into lib/vla_ros/ (setup.cfg); pip installs them into bin/, and lib/vla_ros/ gets small
wrappers that exec those (launch_ros and ``ros2 run`` look in lib/<package>/).
"""

import sys
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "vla_ros"
NODES = ["sim_node", "policy_node", "controller_node", "recorder_node", "joint_state_relay"]
WHEEL = any(cmd in sys.argv for cmd in ("bdist_wheel", "editable_wheel"))  # a pip install, not colcon


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that mirror ``folder`` under share/vla_ros/."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(f"{folder}/**/*", recursive=True)):
        if Path(path).is_file():
            entries.setdefault(str(Path("share") / PACKAGE / Path(path).parent), []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["py.typed", "models/*/*.json", "models/*/*.safetensors", "models/*/*.png"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("urdf"),
        # launch_ros resolves executables in lib/<package>/; a pip install gets wrappers there.
        *([(f"lib/{PACKAGE}", [f"scripts/{name}" for name in [*NODES, "vla-ros"]])] if WHEEL else []),
    ],
    install_requires=["numpy", "pyyaml"],
    zip_safe=False,  # the shipped model is read from its folder
    maintainer="vla_ros maintainers",
    maintainer_email="maintainers@vla-ros.dev",
    description="Vision-Language-Action policies on ROS 2 robot arms",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "vla-ros = vla_ros.cli:main",
            *(f"{name} = vla_ros.ros.entry:{name}" for name in NODES),
        ],
    },
)
