# Common recipes. `just` itself: `cargo install just` (the README's commands do not need it).

# The main job on the embedded default: generate data, train the tokenizers, evaluate them.
demo:
    cargo run --release -- demo

# Every test (the README's test command).
test:
    bash tests/run-all.sh

# Generate the embedded world's splits into data/.
data n="2000":
    cargo run --release -- world generate --split train --n {{n}} --out data/train
    cargo run --release -- world generate --split test --out data/test
    cargo run --release -- world generate --split videos --n 50 --out data/videos

# Train the image and text tokenizers on data/train into models/.
tokenizers:
    cargo run --release -- tokenizer train --data data/train --out models
    cargo run --release -- tokenizer eval --tokenizers models --data data/test

# Format and lint.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets -- -D warnings

# Check the kernel compiles for the browser.
wasm:
    rustup target add wasm32-unknown-unknown
    cargo build -p dynaboot --target wasm32-unknown-unknown --no-default-features

# Speed of the `small` preset, side by side with PyTorch eager (installs torch into .venv).
bench:
    test -x .venv/bin/python || python3 -m venv .venv
    .venv/bin/python -c "import torch, transformers" 2>/dev/null || .venv/bin/pip install -q torch transformers
    cargo run --release -- bench --torch .venv/bin/python
