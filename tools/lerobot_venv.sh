#!/usr/bin/env bash
# Build LeRobot 0.4.4's own environment, beside (never inside) the project's venv.
# Used outside `make test` to check our exports/loaders against LeRobot's code and to produce fixtures.
# LeRobot 0.4.4 pins torch<2.11 and transformers<5, which conflict with the project venv.
# torch 2.9.1 + torchvision 0.24.1 are the pair this machine serves from local disk for Python 3.11.
set -euo pipefail
VENV=${1:-${LEROBOT_VENV:-$HOME/.cache/vla_ros/lerobot-venv}}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip_install torch==2.9.1 torchvision==0.24.1
# torchcodec 0.9 is the release built against torch 2.9 (0.10, which pip picks, fails to load: undefined symbols);
# it needs FFmpeg's shared libraries (Debian: apt-get install libavutil57 libavcodec59 libavformat59 libavdevice59
# libavfilter8 libswscale6 libswresample4), else LeRobot's video decoding fails.
pip_install "lerobot[smolvla]==0.4.4" torch==2.9.1 torchvision==0.24.1 torchcodec==0.9.1
"$VENV/bin/python" -c "import lerobot, torch; from lerobot.datasets.lerobot_dataset import LeRobotDataset; import torchcodec.decoders; print('lerobot', lerobot.__version__, 'torch', torch.__version__)"
echo "lerobot_venv: $VENV ready"
