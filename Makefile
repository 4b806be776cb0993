# vla_ros: `make demo` and `make test` are all a newcomer needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
PACKAGE_FILES := $(shell git ls-files vla_ros config launch urdf scripts resource 2>/dev/null)

.PHONY: venv demo dataset lerobot-check test test-unit bench bench-gpu fuzz lint docs dev clean

venv: $(STAMP)

$(STAMP): tools/setup_venv.sh requirements.txt requirements-ros.txt requirements-dev.txt requirements-nodeps.txt \
		tools/build_interfaces.sh requirements-interfaces.txt $(shell find interfaces -type f 2>/dev/null) \
		setup.py setup.cfg \
		package.xml pyproject.toml $(PACKAGE_FILES)
	tools/setup_venv.sh $(VENV)
	touch $@

demo: venv  ## seeded pick episodes through the full ROS graph in MuJoCo; writes output/demo/
	$(VENV)/bin/vla-ros demo --episodes 5 --seed 0 --out output/demo

dataset: venv  ## 5 WidowX demonstrations recorded through the graph, exported as a LeRobotDataset: output/lerobot_widowx/
	$(VENV)/bin/vla-ros record --episodes 5 --seed 0 --out output/dataset_bags
	$(VENV)/bin/vla-ros export output/dataset_bags --out output/lerobot_widowx
	@echo "LeRobot opens it: lerobot-dataset-viz --repo-id local/widowx --root output/lerobot_widowx --episode-index 0"

LEROBOT_VENV ?= $(HOME)/.cache/vla_ros/lerobot-venv
lerobot-check: dataset  ## LeRobot 0.4.4's own loader and lerobot-train (ACT, 5 steps) on that dataset (side venv)
	tools/lerobot_venv.sh $(LEROBOT_VENV)
	$(PY) tools/lerobot_truth.py export output/dataset_bags --out output/lerobot_widowx
	$(LEROBOT_VENV)/bin/python tools/lerobot_check.py load output/lerobot_widowx output/lerobot_widowx.truth.npz
	$(LEROBOT_VENV)/bin/python tools/lerobot_check.py train output/lerobot_widowx output/lerobot_act 5

test: venv  ## unit tests of the core + integration tests with real nodes over DDS
	VLA_ROS_REQUIRE_INSTALL=1 $(PY) -m pytest

bench: venv  ## benchmarks: chunk execution strategies, controller timing under load; output/bench/
	$(PY) -m bench --out output/bench

bench-gpu: venv  ## full-size pi0, pi0.5, an OpenVLA-size model (and SmolVLA: SMOLVLA_VLM=dir) on CUDA (random weights); output/bench-gpu/
	$(PY) -m bench.gpu --out output/bench-gpu $(if $(SMOLVLA_VLM),--smolvla-vlm $(SMOLVLA_VLM))

fuzz: venv  ## 100,000 malformed messages on every input while the arm runs; output/fuzz/
	$(VENV)/bin/vla-ros fuzz --messages 100000 --out output/fuzz

test-unit: venv
	$(PY) -m pytest -m "not integration"

lint: venv
	$(VENV)/bin/ruff check .

docs: venv  ## regenerate the README's reference tables from the code
	$(PY) -m vla_ros.docs --write README.md

dev: venv  ## editable and launchable: a colcon workspace in ws/ linking this checkout (--symlink-install)
	mkdir -p ws/src && ln -sfn $(CURDIR) ws/src/vla_ros
	cd ws && PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(CURDIR)/$(VENV)/bin/colcon build --symlink-install --base-paths src
	@echo "source ws/install/setup.bash (after your ROS 2 setup), then: ros2 launch vla_ros policy.launch.py"

clean:
	rm -rf $(VENV) build output ws *.egg-info
