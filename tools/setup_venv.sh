#!/usr/bin/env bash
# Create or update the project's virtual environment (idempotent).
# Uses a sourced ROS 2 install when `import rclpy` already works, else the ROS 2 Jazzy PyPI wheels.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

system_ros=0
if "$PYTHON" -c "import rclpy" >/dev/null 2>&1; then
  system_ros=1
  echo "setup_venv: using the sourced ROS 2 install (rclpy importable)"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$system_ros" = 1 ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
# (this machine's pip config names optional local indexes; hide its "Location ... ignored" noise only)
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
reqs=(-r requirements.txt -r requirements-dev.txt)
[ "$system_ros" = 1 ] || reqs+=(-r requirements-ros.txt)
pip_install "${reqs[@]}"
pip_install --no-deps -r requirements-nodeps.txt
# A regular (not editable) install: pip puts data_files (share/vla_ros, lib/vla_ros) only into real installs.
pip_install --no-deps --force-reinstall .
tools/build_interfaces.sh "$VENV"  # interface packages from interfaces/ that no ROS install provides
"$VENV/bin/python" -c "import rclpy, mujoco, torch, vla_ros" \
  || { echo "setup_venv: the environment is incomplete" >&2; exit 1; }
echo "setup_venv: $VENV ready"
