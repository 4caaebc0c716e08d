# Common recipes. `just` itself: `cargo install just` (the README's commands do not need it).

# The main job: best-of-8 with the shipped models on the fixed test split, per family.
demo:
    cargo run --release -- demo

# Every test (the README's test command).
test:
    bash tests/run-all.sh

# The kill soak: a training run killed with SIGKILL at 10 random moments (many during a
# checkpoint write) and resumed each time must end bit-identical to an uninterrupted run (the
# test command runs the same test with 3 kills).
soak:
    DYNABOOT_SOAK_KILLS=10 cargo test --workspace --features dynaboot/notebook --test model_cli -- a_run_killed_at_random_moments --nocapture

# The browser soak: `rounds` predictions in a row on the demo page in headless Chromium on both
# backends, memory sampled after each (flat within 10 % after warm-up), bad input in between.
soak-web rounds="100":
    bash web/tests/soak.sh {{rounds}}

# Fuzz every parser of outside input for `secs` seconds each (cargo-fuzz on nightly, installed
# if missing): executions, corpus size and crashes per target; the corpora are minimised and
# committed, and the test command replays them on stable (tests/fuzz_corpora.rs).
fuzz secs="600" *targets:
    bash fuzz/run.sh {{secs}} {{targets}}

# Execute every notebook headlessly; fails on any error or false assertion. Arguments go to
# notebooks/run.py: `--quick` (CI sizes), `--html out/notebooks` (rendered copies), paths.
notebooks *args:
    bash notebooks/run.sh {{args}}

# Open JupyterLab on the notebooks (installs JupyterLab, evcxr_jupyter and rust-src if missing).
lab:
    bash notebooks/lab.sh

# Generate the embedded world's splits into data/.
data n="2000":
    cargo run --release -- world generate --split train --n {{n}} --out data/train
    cargo run --release -- world generate --split test --out data/test
    cargo run --release -- world generate --split videos --n 50 --out data/videos

# Train the image and text tokenizers on data/train into models/ (a quick fresh pair; the
# shipped VQ is `just vq`).
tokenizers:
    cargo run --release -- tokenizer train --data data/train --out models
    cargo run --release -- tokenizer eval --tokenizers models --data data/test

# The shipped image tokenizer (about 37 minutes on an idle 2-core machine): the local-encoder
# VQ (each token a function of its own 8x8 patch) trained 8000 steps on the 24 000 images of
# 12 000 training triplets. It trains into runs/vq and only its vq/ is copied to models/: the
# shipped text tokenizer stays. Every model is trained on its token ids: after it, run
# `just foundation` and `just models`.
vq:
    cargo run --release -- world generate --split train --n 12000 --seed 0 --out data/train
    cargo run --release -- world generate --split test --out data/test
    cargo run --release -- tokenizer train --data data/train --out runs/vq --steps 8000 --batch 16 --local-encoder --restarts worst --dead-code-threshold 0.1
    rm -rf models/vq.new && cp -r runs/vq/vq models/vq.new && rm -rf models/vq && mv models/vq.new models/vq
    cargo run --release -- tokenizer eval --tokenizers models --data data/test --json models/vq/eval.json

# Train the shipped world and dynamics models into models/ (about 40 minutes on an idle 2-core
# machine): both are full fine-tunes of the foundation (`just foundation`) on labelled triplets
# (FT, plain loss, action-first prompts): the world model on four training folders, from the
# foundation's step-4000 checkpoint, which it edits better from; the dynamics model on the same
# four, 5000 steps, from the end of its schedule, with the relations family (whatsup) shown twice
# per epoch. f16 export, evaluation. The tuning split is only their held-out set.
models:
    cargo run --release -- world generate --split train --n 12000 --seed 0 --out data/train
    cargo run --release -- world generate --split train --n 12000 --seed 2 --out data/train2
    cargo run --release -- world generate --split train --n 12000 --seed 3 --out data/train3
    cargo run --release -- world generate --split train --n 12000 --seed 4 --out data/train4
    cargo run --release -- world generate --split train --n 400 --seed 7 --out data/tune
    cargo run --release -- world generate --split test --out data/test
    cargo run --release -- train --role world --base models/foundation-4000 --data data/train --data data/train2 --data data/train3 --data data/train4 --eval data/tune --steps 4000 --eval-every 1000 --out runs/world
    cargo run --release -- train --role dynamics --base models/foundation --data data/train --data data/train2 --data data/train3 --data data/train4 --eval data/tune --steps 5000 --eval-every 1000 --repeat whatsup=2 --out runs/dynamics
    cargo run --release -- export --force --from runs/world --to models/world
    cargo run --release -- export --force --from runs/dynamics --to models/dynamics
    cargo run --release -- eval --world models/world --dynamics models/dynamics --n 8 --data data/test --out models/eval.json --html out/models-eval.html --force

# Pretrain the foundation into models/foundation: the backbone with no role, trained on 24 000
# fresh frame pairs of the embedded world without their actions (scene captions, scene
# drawings, transitions), 16 000 steps; its step-4000 checkpoint is kept as
# models/foundation-4000 (the world model's start). f32, so fine-tunes read exactly what was
# trained. About an hour on an idle 2-core machine.
foundation:
    cargo run --release -- world generate --split train --n 24000 --seed 100 --out data/foundation
    cargo run --release -- world generate --split train --n 400 --seed 7 --out data/tune
    cargo run --release -- train --role foundation --data data/foundation --eval data/tune --preset demo --steps 16000 --stop-after 4000 --eval-every 2000 --out runs/foundation
    cargo run --release -- export --force --full --from runs/foundation --to models/foundation-4000
    cargo run --release -- train --role foundation --data data/foundation --eval data/tune --preset demo --steps 16000 --eval-every 2000 --out runs/foundation --resume
    cargo run --release -- export --force --full --from runs/foundation --to models/foundation

# The foundation the ablation fine-tunes, models/foundation-changes: models/foundation continued
# 4000 steps (learning rate 5e-4) on the first 8000 of its own frame pairs with its three tasks
# and a fourth, change captions (from both images, what the second shows differently, in the
# scene language, naming no action; `train --changes`). f32. About 15 minutes on an idle 2-core
# machine; then `just ablate`.
foundation-changes:
    cargo run --release -- world generate --split train --n 8000 --seed 100 --out data/foundation8k
    cargo run --release -- world generate --split train --n 400 --seed 7 --out data/tune
    cargo run --release -- train --role foundation --changes --base models/foundation --data data/foundation8k --eval data/tune --steps 4000 --lr 5e-4 --eval-every 1000 --out runs/foundation-changes
    cargo run --release -- export --force --full --from runs/foundation-changes --to models/foundation-changes

# The paper's ablation (3 seeds, under 30 minutes on 2 cores): per seed a dynamics model and
# four world models, each a full fine-tune of models/foundation-changes; videos labelled and
# candidates verified by the shipped dynamics model. Its record (results.json, report.md) is
# copied to models/ablation/, which notebooks 03 and 05 show.
ablate:
    cargo run --release -- ablate --preset paper --seeds 3 --out out/ablate
    mkdir -p models/ablation.new && cp out/ablate/results.json out/ablate/report.md models/ablation.new/
    rm -rf models/ablation && mv models/ablation.new models/ablation

# The same ablation in the paper's own regime: each seed's own dynamics model, fine-tuned on
# the same 250 labelled triplets, labels the videos and verifies (not the shipped one, trained
# on 48,000); its record goes beside the other, to models/ablation-own-annotator/.
ablate-own:
    cargo run --release -- ablate --preset paper --seeds 3 --own-annotator --out out/ablate-own
    mkdir -p models/ablation-own-annotator.new && cp out/ablate-own/results.json out/ablate-own/report.md models/ablation-own-annotator.new/
    rm -rf models/ablation-own-annotator && mv models/ablation-own-annotator.new models/ablation-own-annotator

# The scaling study (issue 42; about 7 hours of compute on 2 cores, over several sessions): FT and FDM across labelled sizes, each
# size's own dynamics model labelling the videos. It runs in runs/scaling, whose .gitignore keeps
# only the finished stages' json, so a study stopped in one session resumes (--resume) in the
# next, exactly; the record goes to models/scaling/.
scale:
    cargo run --release -- scale --out runs/scaling $(test -f runs/scaling/study.json && echo --resume)
    mkdir -p models/scaling.new && cp runs/scaling/results.json runs/scaling/report.md models/scaling.new/
    rm -rf models/scaling && mv models/scaling.new models/scaling

# The record of the scaling study so far, running nothing (safe while it runs): its finished
# cells added up, the cells still to run named in the report; to models/scaling/.
scale-report:
    cargo run --release -- scale --out runs/scaling --report
    mkdir -p models/scaling.new && cp runs/scaling/results.json runs/scaling/report.md models/scaling.new/
    rm -rf models/scaling && mv models/scaling.new models/scaling

# Imagination (issue 43): rollouts against the true frames and the exact planning benchmark with
# the shipped pair, on seeds the planner was never tuned on (tuning used seed 7); the record goes
# to models/imagination/ (notebook 08 reads it).
imagination:
    mkdir -p out/imagination
    cargo run --release -- rollout eval --steps 5 --n 8 --chains 50 --seed 1 --out out/imagination/rollout-eval.json --force
    cargo run --release -- plan eval --depth 1,2,3 --n 50 --problem-seed 1 --out out/imagination/plan-eval.json --html out/imagination/plan-eval.html --force
    mkdir -p out/imagination/budget && for kb in "4 1" "4 2" "8 1" "8 4" "16 2"; do set -- $kb; cargo run --release -- plan eval --depth 2,3 --n 20 --problem-seed 1 --proposals $1 --beam $2 --force --out out/imagination/budget/K$1-B$2.json || exit 1; done
    mkdir -p models/imagination.new/budget && cp out/imagination/rollout-eval.json out/imagination/plan-eval.json models/imagination.new/ && cp out/imagination/budget/*.json models/imagination.new/budget/
    rm -rf models/imagination && mv models/imagination.new models/imagination

# Format and lint.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets --features dynaboot/notebook -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc -p dynaboot --no-deps --features notebook

# Build the browser demo into web/dist (wasm32 release, wasm-bindgen, the page, the models).
web-build:
    bash web/build.sh

# Build and serve the browser demo on http://127.0.0.1:8080.
web: web-build
    python3 -m http.server --bind 127.0.0.1 --directory web/dist 8080

# Check the kernel compiles for the browser.
wasm:
    rustup target add wasm32-unknown-unknown
    cargo build -p dynaboot --target wasm32-unknown-unknown --no-default-features

# Speed of the `small` preset, side by side with PyTorch eager (installs torch into .venv).
bench:
    test -x .venv/bin/python || python3 -m venv .venv
    .venv/bin/python -c "import torch, transformers" 2>/dev/null || .venv/bin/pip install -q torch transformers
    cargo run --release -- bench --torch .venv/bin/python

# On a machine with an NVIDIA GPU and the CUDA toolkit (nvcc): the CUDA tests (training,
# generation and scoring on the GPU against the CPU) and the benchmark on the GPU.
test-cuda:
    cargo test --release -p dynaboot --features cuda --lib cuda
    cargo run --release --features cuda -- bench --device cuda
