# The two user commands (see README.md):
#   make repro   set up .venv if missing, then run the pipeline (dvc repro) on the embedded default
#   make test    set up .venv if missing, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# dvc runs each stage's cmd (`neurolatent ...`) through the shell: the environment's bin must be on
# PATH for every command this Makefile runs, whether or not the user activated the environment
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test setup clean-venv study corrected corrected-glmsingle chromium

# The study's configuration and the corrected one on a real BOLD5000 copy, each one DVC experiment:
#   make study BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli               (raw runs)
#   make corrected BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli           (fMRIPrep T1w runs + SPM ROIs)
#   make corrected-glmsingle BOLD5000=/data/ds001499 STIMULI=/data/BOLD5000_Stimuli GLMSINGLE=/data/BOLD5000_GLMsingle
# (README, "Running on the real BOLD5000" and "The study's configuration and the corrected one".)
REAL_DATA = -S data.source=bids -S data.bids_root=$(BOLD5000) -S data.stimuli_root=$(STIMULI) \
            -S 'data.sessions=null' -S 'data.runs=null' -S 'fmri_ae.train_subjects=[CSI1,CSI2,CSI3]' \
            -S 'fmri_ae.test_subjects=[CSI4]'
STUDY = -S 'data.forms=[raw]' -S preprocess.space=raw -S preprocess.mask=brain \
        -S preprocess.method=rendered -S preprocess.render.size=672 -S preprocess.render.samples=all_trs \
        -S preprocess.render.engine=fast -S preprocess.lag_s=0 -S preprocess.anchor=offset \
        -S embed.pooling=flatten -S embed.tokens=flat -S 'embed.image_models=[google/vit-base-patch16-224-in21k]' \
        -S 'rsa.fmri=[ae]' -S rsa.variance=0.70 -S rsa.min_components=1 -S rsa.dissimilarity=correlation \
        -S rsa.compare=pearson -S stitch.test=repeats
CORRECTED = -S preprocess.method=betas -S 'preprocess.lag_s=[4.0,6.0]' -S preprocess.anchor=onset \
            -S preprocess.mask=region -S embed.pooling=avgpool -S embed.tokens=cls \
            -S 'embed.image_models=[pixels,image_ae,google/vit-base-patch16-224-in21k,untrained:google/vit-base-patch16-224-in21k]' \
            -S 'rsa.fmri=[ae,samples]' -S rsa.compare=spearman -S rsa.permutations=10000 -S stitch.test=repeats

study: $(VENV)/.installed
	$(BIN)/dvc exp run -n study $(REAL_DATA) $(STUDY)

corrected: $(VENV)/.installed
	$(BIN)/dvc exp run -n corrected $(REAL_DATA) -S 'data.forms=[T1w]' -S preprocess.space=T1w $(CORRECTED)

corrected-glmsingle: $(VENV)/.installed
	$(BIN)/dvc exp run -n corrected-glmsingle $(REAL_DATA) $(CORRECTED) -S 'data.forms=[glmsingle]' \
	  -S data.glmsingle_root=$(GLMSINGLE) -S preprocess.method=glmsingle

repro: $(VENV)/.installed
	$(BIN)/dvc repro

test: $(VENV)/.installed chromium
	$(BIN)/python -m pytest

# The MLflow UI test drives Debian's chromium. As root on Debian/Ubuntu it is installed when
# absent; anywhere else that one test skips and says why.
chromium:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	    || echo "chromium could not be installed: the MLflow UI test will skip"; \
	fi

setup: $(VENV)/.installed

# Rebuilt when the pins change; constraints.txt pins the whole resolved set.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean-venv:
	rm -rf $(VENV)
