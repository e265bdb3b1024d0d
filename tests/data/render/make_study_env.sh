#!/bin/sh
# The study's environment (requirements-study.txt) under .study-env/ (git-ignored), then nilearn
# 0.10.4's pictures of the seeded volumes (tests/data/render/drawn/) and, with `all`, of the four
# named volumes too. Run from the repository root: sh tests/data/render/make_study_env.sh [all]
set -e
test -x .study-env/bin/python || python3 -m venv .study-env
.study-env/bin/pip install --quiet -r tests/data/render/requirements-study.txt
.study-env/bin/python tests/data/render/make_reference_pictures.py drawn
if [ "$1" = all ]; then .study-env/bin/python tests/data/render/make_reference_pictures.py pictures; fi
