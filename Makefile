# Two commands for a fresh machine (see README.md):
#   make all    the whole comparison on the embedded defaults: train every method and both
#               baselines, then the full report (python -m report: evaluate.py's scores and comparisons,
#               and everything around them)
#   make test   the test suite
#   make study SEEDS=5   the whole pipeline again per training seed (teacher_s, the students distilled
#                        from it, LoRA, the controls, minilm): seed 42 reuses make all's runs, the others
#                        go to runs/study/; then the report, with mean ± std and paired comparisons.
#                        Resumable: finished runs are skipped (experiments/study.py).
#   make ablations   the ablations (experiments/ablations.py): layer sets, LoRA rank/targets/rsLoRA, the
#                    transfer set of unlabelled comments, the ensemble teacher and the query: prefix; reuses
#                    the runs of make all / make study (run those first), the others go to runs/ablations/.
#                    Resumable. ABLATION_FLAGS="--seeds 1" and the like change the seeds. Then python -m report.
#   make second-dataset   the question again on toxic-comments (Jigsaw 2018 + Davidson 2017, embedded):
#                    teacher, odd, even, lora, minilm and TF-IDF with the recipes tuned on insults,
#                    SECOND_SEEDS (3) seeds, in runs/toxic-comments/; then the report, which adds that
#                    dataset's tables, the models scored across the two datasets and the behavioural suite
#                    side by side (report/datasets.py, docs/datasets.md). Resumable.
#   make strong-teacher   a stronger teacher, all-mpnet-base-v2 (embedded: python -m embedded mpnet-base), and the
#                    students it teaches through its soft labels (experiments/ablations.py, family strong): 5 seeds
#                    for the rows of the two questions (odd-ce, strong-odd; minilm, minilm-kd), 3 for the rest;
#                    then python -m report --family strong, which adds them to results/ and keeps the rest.
#                    Search teacher-strong and minilm-kd first and copy their choices into train.py's RECIPES:
#                    make tune TUNE_FLAGS="--methods teacher-strong,minilm-kd". Resumable.
#   make tune   every method's learning rate and epochs searched on validation ROC-AUC at seed 0, no
#               seed of the study, each grid grown until its best is inside it (experiments/tune.py);
#               writes results/tuning.md and results/tuned_defaults.json,
#               whose choices train.py's RECIPES table must repeat (tests/test_recipes.py). Resumable.
#   make peer   an off-the-shelf comparison row: alt-profanity-check scored on the insults test split
#               (baselines/alt_profanity_check.py), into results/peer.json. The package unpickles its model,
#               so it runs in a side environment, .venv-peer (requirements-peer.txt), built here if needed.
#   JOBS=2, the default (all, tune, study, ablations): two runs train at once, one torch thread each
#               on 2 cores, each printing to runs/.../<run>.log; JOBS=1 trains one at a time with every
#               core, on the console (experiments/runner.py; python -m bench.parallel_runs measures both).
# Each creates its own virtual environment in .venv from the pinned requirements.
# Smoke runs of the long targets (small and fast; nothing in runs/ or results/ is touched):
#   make study SEEDS=2 RUNS=/tmp/smoke/runs TRAIN_FLAGS="--limit 320 --epochs 1 --max-length 48" \
#        REPORT_FLAGS="--out /tmp/smoke/results --no-readme --no-speed"
#   make ablations RUNS=/tmp/smoke/runs ABLATION_FLAGS="--seeds 1" TRAIN_FLAGS="--limit 64 --epochs 1 --max-length 32"
#   python -m report --runs-dir /tmp/smoke/runs --out /tmp/smoke/results --no-readme --no-speed
#   make tune RUNS=/tmp/smoke/runs TRAIN_FLAGS="--limit 320 --max-length 48" TUNE_FLAGS="--out /tmp/smoke/tuning"
VENV   := .venv
PYTHON := $(VENV)/bin/python
SEEDS  ?= 5
SECOND_SEEDS ?= 3
SECOND_METHODS := teacher,odd,even,lora,minilm,tfidf
RUNS   ?= runs
TRAIN_FLAGS    ?=
REPORT_FLAGS ?=
TUNE_FLAGS     ?=
ABLATION_FLAGS ?=
JOBS           ?= 2

.PHONY: all test study second-dataset tune ablations strong-teacher mutation peer
STRONG_SEEDS := all=0,strong=3,teacher-strong=5,odd-ce=5,strong-odd=5,minilm=5,minilm-kd=5

$(VENV)/installed: requirements.txt requirements-test.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check --quiet -r requirements.txt -r requirements-test.txt
	touch $@

all: $(VENV)/installed
	$(PYTHON) -m experiments.study --make-all --runs-dir $(RUNS) --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)"
	$(PYTHON) -m report --runs-dir $(RUNS) $(REPORT_FLAGS)

test: $(VENV)/installed
	$(PYTHON) -m pytest -rs tests

study: $(VENV)/installed
	$(PYTHON) -m experiments.study --seeds $(SEEDS) --runs-dir $(RUNS) --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)"
	$(PYTHON) -m report --runs-dir $(RUNS) $(REPORT_FLAGS)

second-dataset: $(VENV)/installed
	$(PYTHON) -m experiments.study --dataset toxic-comments --seeds $(SECOND_SEEDS) --methods $(SECOND_METHODS) \
		--runs-dir $(RUNS) --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)"
	$(PYTHON) -m report --runs-dir $(RUNS) $(REPORT_FLAGS)

ablations: $(VENV)/installed
	$(PYTHON) -m experiments.ablations --runs-dir $(RUNS) --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)" $(ABLATION_FLAGS)

strong-teacher: $(VENV)/installed
	$(PYTHON) -m embedded mpnet-base
	$(PYTHON) -m experiments.ablations --seeds $(STRONG_SEEDS) --runs-dir $(RUNS) --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)"
	$(PYTHON) -m report --family strong --runs-dir $(RUNS) $(REPORT_FLAGS)

tune: $(VENV)/installed
	$(PYTHON) -m experiments.tune --runs-dir $(RUNS)/tune --jobs $(JOBS) --train-flags "$(TRAIN_FLAGS)" $(TUNE_FLAGS)

# make bench   the benchmarks of bench/, then bench/RESULTS.md (see bench/make_results.py). They run
#              in their own environment, .venv-bench: requirements.txt plus requirements-bench.txt
#              (peft, accelerate: only the comparison with Trainer needs them). Needs the trained runs
#              of `make all`; about 30-40 minutes on 2 cores. Run it on an otherwise idle machine.
BENCH_VENV := .venv-bench

$(BENCH_VENV)/installed: requirements.txt requirements-bench.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements.txt -r requirements-bench.txt
	touch $@

.PHONY: bench
bench: $(BENCH_VENV)/installed
	$(BENCH_VENV)/bin/python -m bench.make_results

# make mutation   mutation testing (mutmut) of lora/, distill/, training/loop.py and training/batching.py,
#                 killed by the fast unit tests named in setup.cfg; writes
#                 tests/MUTATION.md with the score per module and every surviving mutant. Its own
#                 environment, .venv-mutation. One torch thread per mutmut worker (MUTATION_JOBS of them):
#                 tiny models gain nothing from more, and oversubscribed cores slow them tenfold.
MUTATION_VENV := .venv-mutation
MUTATION_JOBS ?= 2

$(MUTATION_VENV)/installed: requirements.txt requirements-test.txt requirements-mutation.txt
	python3 -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements.txt -r requirements-test.txt -r requirements-mutation.txt
	touch $@

.PHONY: mutation
mutation: $(MUTATION_VENV)/installed
	@for path in $$(git ls-files '*.py' | sed 's|/.*|/|' | grep -vx tests/ | sort -u); do \
	  grep -qx "    $$path" setup.cfg || { echo "setup.cfg [mutmut]: add $$path to also_copy"; exit 1; }; \
	done
	rm -rf mutants
	started=$$(date +%s) && OMP_NUM_THREADS=1 $(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) && \
	  $(MUTATION_VENV)/bin/python tests/mutation_report.py --wall-time $$(($$(date +%s) - started))

PEER_VENV := .venv-peer

$(PEER_VENV)/installed: requirements-peer.txt
	python3 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements-peer.txt
	touch $@

peer: $(VENV)/installed $(PEER_VENV)/installed
	$(PYTHON) -m baselines.alt_profanity_check --python $(PEER_VENV)/bin/python
