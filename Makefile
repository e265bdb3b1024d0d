# The two user commands (see README.md):
#   make repro   set up .venv if missing, run the pipeline (dvc repro) on the embedded default, then check
#                that every stage with the committed inputs reproduced dvc.lock (neurolatent verify)
#   make test    set up .venv if missing, then run the test suite
# and the documentation site: make docs (docs/_build/html/index.html)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# dvc runs each stage's cmd (`neurolatent ...`) through the shell: the environment's bin must be on
# PATH for every command this Makefile runs, whether or not the user activated the environment
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test docs results-pages setup clean-venv brainscore-env brainscore-vision-env study corrected corrected-glmsingle chromium lab-packages compare compare-quick ablation show \
        team-server team-server-stop team-server-rotate

# The study's configuration and the corrected one on a real BOLD5000 copy, each one DVC experiment:
#   make study BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli               (raw runs)
#   make corrected BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli           (fMRIPrep T1w runs + SPM ROIs)
#   make corrected-glmsingle BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli GLMSINGLE=/data/BOLD5000_GLMsingle
# (docs/real-data.md and docs/configurations.md.)
REAL_DATA = -S data.source=bids -S data.bids_root=$(BOLD5000) -S data.stimuli_root=$(STIMULI) \
            -S 'data.sessions=null' -S 'data.runs=null' -S 'fmri_ae.train_subjects=[CSI1,CSI2,CSI3]' \
            -S 'fmri_ae.test_subjects=[CSI4]'

# configs/*.yaml hold each configuration's params (one place for them; `neurolatent experiment`
# passes every key as dvc exp run -S)
# Brain-Score's own loader beside the project (brainscore-core needs numpy < 2): a side environment
# that make test builds and tests/io/test_exports.py loads the export with (docs/field-tools.md)
brainscore-env: .brainscore-env/.installed

.brainscore-env/.installed: tests/data/brainscore/requirements.txt
	$(PYTHON) -m venv .brainscore-env
	.brainscore-env/bin/python -m pip install --quiet -r tests/data/brainscore/requirements.txt
	touch $@

# brain-score/vision itself, from a clone of it (BRAINSCORE_VISION=<clone>), without its model dependencies:
# tests/io/test_exports.py runs the exported plugin inside that clone when BRAINSCORE_VISION names it. Not part
# of make test (it needs the clone, and writes the plugin into it while the test runs)
brainscore-vision-env: .brainscore-vision-env/.installed

.brainscore-vision-env/.installed: tests/data/brainscore/vision-requirements.txt
	@test -d "$(BRAINSCORE_VISION)/brainscore_vision" || { echo "BRAINSCORE_VISION: name a brain-score/vision clone"; exit 1; }
	$(PYTHON) -m venv .brainscore-vision-env
	.brainscore-vision-env/bin/python -m pip install --quiet -r tests/data/brainscore/vision-requirements.txt
	.brainscore-vision-env/bin/python -m pip install --quiet --no-deps -e $(BRAINSCORE_VISION)
	touch $@

study: $(VENV)/.installed
	$(BIN)/neurolatent experiment study configs/study.yaml $(REAL_DATA)

corrected: $(VENV)/.installed
	$(BIN)/neurolatent experiment corrected configs/corrected.yaml $(REAL_DATA)

corrected-glmsingle: $(VENV)/.installed
	$(BIN)/neurolatent experiment corrected-glmsingle configs/corrected.yaml $(REAL_DATA) -S 'data.forms=[glmsingle]' \
	  -S data.glmsingle_root=$(GLMSINGLE) -S preprocess.method=glmsingle

# The study's configuration beside the corrected one on the embedded synthetic data, as queued DVC
# experiments over planted SNR and seeds, then reports/compare/ (docs/results.md, "Study vs corrected"):
#   make compare         5 SNRs x 3 seeds x 2 configurations = 30 experiments
#   make compare-quick   SNR 0 and 1, one seed: 4 experiments, reports/compare-quick/
COMPARE = --config study=configs/study.yaml --config corrected=configs/corrected.yaml \
          --override configs/synthetic-sweep.yaml

compare: $(VENV)/.installed
	$(BIN)/neurolatent sweep --name compare $(COMPARE) --snr 0 0.25 0.5 1 2 --seeds 0 1 2 --jobs 2 --out reports/compare

compare-quick: $(VENV)/.installed
	$(BIN)/neurolatent sweep --name quick $(COMPARE) --snr 0 1 --seeds 0 --jobs 2 --out reports/compare-quick

# Why the corrected AE's r with the planted truth falls from SNR 1 to 2 in reports/compare and the
# betas' r levels off below its noise ceiling: the corrected configuration at the sweep's scale, as
# it is, with every SVD component kept, and with its AE trained up to 30 epochs; SNR 1, 2, 4, 16,
# seed 0: 12 experiments, reports/ablation/ (its table "The planted truth at each SNR")
SWEEP_CORRECTED = configs/corrected.yaml+configs/synthetic-sweep.yaml
ABLATION = --config corrected=$(SWEEP_CORRECTED) \
           --config all-components=$(SWEEP_CORRECTED)+configs/ablation/all-components.yaml \
           --config epochs-30=$(SWEEP_CORRECTED)+configs/ablation/epochs-30.yaml

ablation: $(VENV)/.installed
	$(BIN)/neurolatent sweep --name ablation $(ABLATION) --snr 1 2 4 16 --seeds 0 --jobs 2 --out reports/ablation \
	  --table-snr 2

# The headline of every experiment in one table of at most 200 columns: metrics/summary.json, the
# planted SNR and the params each experiment changed from its commit (dvc exp show --json, read by
# neurolatent.pipeline.experiments.table)
show: $(VENV)/.installed
	$(BIN)/python -m neurolatent.pipeline.experiments.table

repro: $(VENV)/.installed
	$(BIN)/dvc repro
	$(BIN)/neurolatent verify

# Two pytest workers (2 cores), a test module to one worker (the end-to-end tests of a module share
# one DVC project, in order; --dist loadgroup's marks are lost under pytest 9.2, whose nodeid no
# longer reads the _nodeid that pytest-xdist 3.8 sets), dealt out in tests/conftest.py's order (the
# modules with the most slow tests first; xdist's own reorder puts the modules with the most tests
# first, which left the longest end-to-end run to start last); one thread a worker
TEST_WORKERS ?= 2

test: $(VENV)/.installed chromium lab-packages brainscore-env
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The MLflow UI test drives Debian's chromium. As root on Debian/Ubuntu it is installed when
# absent; anywhere else that one test skips and says why.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	    || echo "chromium could not be installed: the MLflow UI test will skip"; \
	fi

# The lab's setup tests (tests/e2e/test_team.py) start PostgreSQL and an sshd of their own: as root
# on Debian/Ubuntu their packages are installed when absent (the tests skip and say why elsewhere).
lab-packages:
	@if { [ -z "$$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ] || ! [ -x /usr/sbin/sshd ]; } \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	     postgresql openssh-server >/dev/null) || echo "postgresql/openssh-server could not be installed: the lab tests will skip"; \
	fi

# The team MLflow server on this machine (docs/lab.md): PostgreSQL + basic auth on 127.0.0.1,
# state in .team/ (git-ignored); `. .team/env` then logs every stage there. TEAM_PORT (5000) and
# TEAM_DB_PORT (5433) choose the ports; team-server-rotate gives the admin a new password.
team-server: $(VENV)/.installed
	@$(BIN)/python -m neurolatent.pipeline.team start

team-server-stop: $(VENV)/.installed
	@$(BIN)/python -m neurolatent.pipeline.team stop

team-server-rotate: $(VENV)/.installed
	@$(BIN)/python -m neurolatent.pipeline.team rotate

# The documentation site, offline, warnings as errors: the docs extra into .venv, then Sphinx (the
# stage guides' params and files generated from the declarations, the API reference from the
# docstrings, the gallery run from examples/). Its results page shows the committed outputs:
# after a run that moved a number, `make results-pages` writes the page's tables again.
docs: $(VENV)/.docs-installed
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

results-pages: $(VENV)/.installed
	$(BIN)/python docs/results_tables.py --write

$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,docs]'
	touch $@

setup: $(VENV)/.installed

# Rebuilt when the pins change; constraints.txt pins the whole resolved set.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean-venv:
	rm -rf $(VENV)
