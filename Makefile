# Two entry points: `make demo` and `make test`. Both create .venv with pip and install pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/twin compare scenarios/smt_line.yaml --reps 5 --attribution-reps 1 --workers 2 \
		--set run.length=20160 --json demo-comparison.json
	$(BIN)/twin dashboard --store yuetwin.duckdb

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/engine_speed.py
	$(BIN)/python bench/compare_scaling.py
	$(BIN)/python bench/robot_cell.py
	$(BIN)/python bench/env_speed.py
	$(BIN)/python bench/scheduling_quality.py
	$(BIN)/python bench/dashboard_speed.py

clean:
	rm -rf $(VENV) .pytest_cache demo-comparison.json yuetwin.duckdb yuetwin_events test-artefacts
