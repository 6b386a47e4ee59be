# The two commands of a fresh machine (README.md):
#   make run    set everything up, then run the main job
#   make test   set everything up, then run every check, as CI does

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests read files back with (tshark, capinfos).
DEBIAN_PACKAGES := tshark
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run setup system test lint pytest daemon demo default-model clean

run: setup daemon

setup: system $(VENV)/.installed

system:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@for tool in tshark capinfos; do command -v $$tool >/dev/null \
	  || { echo "error: $$tool is missing after installing $(DEBIAN_PACKAGES)" >&2; \
	       exit 1; }; done

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The main job: the daemon on its bundled model, emitting in real time into a
# pcap ring under ./var/ring (no root needed), until Ctrl-C.  Watch it with
# `.venv/bin/fosrctl status`; FOSRD_ARGS adds flags, e.g.
#   make run FOSRD_ARGS="--speed 60 --duration 120"
FOSRD_ARGS ?=
daemon:
	$(BIN)/fosrd --config conf/fosrd.toml $(FOSRD_ARGS)

# The offline pipeline on a synthesised lab capture (no recorded traffic
# needed): flows, learning, the model in words, a day of flows, an hour of
# packets with their ground truth.
demo:
	mkdir -p var/demo
	$(BIN)/python -m fosr.samples var/demo/lab.pcap --sessions 200
	$(BIN)/fosr flows var/demo/lab.pcap -o var/demo/flows.csv
	$(BIN)/fosr learn var/demo/flows.csv -o var/demo/model.fosr
	$(BIN)/fosr model show var/demo/model.fosr
	$(BIN)/fosr generate var/demo/model.fosr --duration 1d --flows var/demo/generated.csv
	@echo "--- var/demo/generated.csv (first rows)"
	@head -n 8 var/demo/generated.csv
	$(BIN)/fosr learn var/demo/lab.pcap -o var/demo/packets.fosr --quiet
	$(BIN)/fosr generate var/demo/packets.fosr --duration 1h -o var/demo/generated.pcap
	capinfos -c -d var/demo/generated.pcap

# The bundled default model (fosrd/data/default.fosr): flows from the first
# 30 minutes of UGR'16's training file, packets from the IoT Sentinel
# training captures, learnt by `fosr learn` with the data's hashes recorded
# in the bundle.  Needs ../shared/data (see its README).
DATA ?= ../shared/data
default-model: setup
	mkdir -p var
	awk -F, 'NR > 1 && $$6 == "train" { print "$(DATA)/iot-sentinel/pcaps/" $$1 }' \
	  $(DATA)/iot-sentinel/splits.csv > var/iot-sentinel-train.args
	$(BIN)/fosr learn $(DATA)/ugr16/train-0800-1200.csv.gz --span 30m \
	  --packets @var/iot-sentinel-train.args -o fosrd/data/default.fosr
	$(BIN)/fosr model show fosrd/data/default.fosr | head -n 40

test: setup lint pytest

lint:
	$(BIN)/ruff check fosr fosrd tests bench
	$(BIN)/ruff format --check fosr fosrd tests bench
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest

clean:
	rm -rf var build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The reference implementations (flowchronicle, tadam-learner) in their own
# venv, bench/reference/.venv, for side-by-side benchmarks only: never a
# runtime dependency (bench/reference/README.md).
.PHONY: reference
reference:
	PYTHON=$(PYTHON) sh bench/reference/setup.sh
