# The two commands of a fresh machine (README.md):
#   make run    set everything up, then run the main job
#   make test   set everything up, then run every check, as CI does

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests read files back with (tshark, capinfos).
DEBIAN_PACKAGES := tshark
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run setup system test lint pytest demo clean

run: setup demo

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

# The main job until the daemon exists: build a lab capture (no recorded
# traffic needed), turn it into flows, learn a flow model from them, show it,
# and generate a day of new flows from it.
demo:
	mkdir -p var/demo
	$(BIN)/python -m fosr.samples var/demo/lab.pcap --sessions 200
	$(BIN)/fosr flows var/demo/lab.pcap -o var/demo/flows.csv
	$(BIN)/fosr learn var/demo/flows.csv -o var/demo/model.fosr
	$(BIN)/fosr model show var/demo/model.fosr
	$(BIN)/fosr generate var/demo/model.fosr --duration 1d --flows var/demo/generated.csv
	@echo "--- var/demo/generated.csv (first rows)"
	@head -n 8 var/demo/generated.csv

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
