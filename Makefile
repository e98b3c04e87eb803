# Every target installs what it needs itself: a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Debian's headless Chromium renders the HTML reports in a test (the report must really display).
# Debian's package name: CodeBuild runs the Debian image of docker/codebuild/Dockerfile, which has
# it already (tests/infra/test_rehearsal.py keeps the two in agreement).
CHROMIUM   := /usr/bin/chromium
CHROMIUM_PACKAGE := chromium
# Its WebDriver, which the console's browser tests (tests/mlops/test_ui_browser.py) drive.
CHROMEDRIVER := /usr/bin/chromedriver
CHROMEDRIVER_PACKAGE := chromium-driver
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -y -q --no-install-recommends
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export SAGEMAKER_VALIDATE_ROLE := false

STAGE ?= dev
CDK := npx --no-install cdk
# A physical name of STAGE (for cdk.json's project) from mlops.stages.names, the one place the
# stacks and the CLI read.
name = $$($(BIN)/python -c 'from mlops.stages import names, load_context, project_name; \
	print(names(project_name(load_context()), "$(STAGE)").$(1))')

.PHONY: install run test test-fast check lint format clean definition synth rehearse ci-plan ci-build ci-deploy ci-smoke

$(PY_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[platform,dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(CHROMIUM) $(CHROMEDRIVER):
	$(APT_GET) install $(CHROMIUM_PACKAGE) $(CHROMEDRIVER_PACKAGE) || \
		($(APT_GET) update && $(APT_GET) install $(CHROMIUM_PACKAGE) $(CHROMEDRIVER_PACKAGE))

install: $(PY_STAMP) $(NODE_STAMP) ## venv with pinned deps, and the pinned CDK CLI

run: $(PY_STAMP) ## the local end-to-end demo: run the pipeline on the demo data set
	$(BIN)/mlops pipeline run

definition: $(PY_STAMP) ## print the pipeline definition JSON
	$(BIN)/mlops pipeline definition

test: install $(CHROMIUM) $(CHROMEDRIVER) ## every test, the slow end-to-end ones too (what CI runs)
	MLOPS_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n 2

test-fast: install ## skip the end-to-end pipeline runs
	$(BIN)/python -m pytest -n 2 -m "not slow"

check: $(PY_STAMP) ## format, lint, types
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

synth: install ## synthesize every stack of STAGE (offline, deterministic)
	$(CDK) synth --quiet -c stage=$(STAGE)

rehearse: install ## offline deploy rehearsal of every stage (IAM, names, exclusions); also in `make test`
	$(BIN)/python -m infra.rehearsal

# CodeBuild (buildspec.yml) runs `make $$CI_TARGET`; these are the targets it may name.
ci-build: check test synth ## CI: check, test, synth

# The release's first action: MLOPS_RELEASE=no when STAGE (the last one) already serves the newest
# approved version, and the version every later action deploys (release.env, exported by
# buildspec.yml as the Plan action's variables).
ci-plan: install ## CI: decide what this release run deploys (writes release.env)
	$(BIN)/mlops models release-plan --stage $(STAGE) --output release.env

# The deploy stack brings its dependency, the stage's foundation, along. MODEL_PACKAGE_ARN is the
# version ci-plan chose (the release passes it on); by hand, the latest approved one.
ci-deploy: install ## CI: deploy STAGE with MODEL_PACKAGE_ARN (default: the latest approved version)
	arn=$${MODEL_PACKAGE_ARN:-$$($(BIN)/mlops models latest-approved --target aws --stage $(STAGE))} && \
	baseline=$$($(BIN)/mlops monitor baseline $${arn##*/} --uri --target aws --stage $(STAGE)) && \
	$(CDK) deploy $(call name,deploy_stack) -c stage=$(STAGE) -c model_package_arn=$$arn \
		-c baseline_uri=$$baseline --require-approval never && \
	$(BIN)/mlops endpoint wait $(call name,endpoint) --stage $(STAGE) --version $${arn##*/}  # fails if it rolled back

ci-smoke: install ## CI: invoke the STAGE endpoint with known rows and check the answer
	$(BIN)/mlops endpoint invoke $(call name,endpoint) --file tests/smoke/rows.csv --target aws --stage $(STAGE) \
		| tee /tmp/smoke.json | grep -q '"predictions"'

format: $(PY_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules cdk.out .mlops .pytest_cache .mypy_cache .ruff_cache
