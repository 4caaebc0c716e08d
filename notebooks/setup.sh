# Sourced by run.sh and lab.sh: installs what the notebooks need when it is missing (Python's
# venv from apt, Jupyter's pieces from PyPI into .venv, evcxr_jupyter via cargo, rust-src) and
# exports PY (the venv's python) and JUPYTER_PATH (where the `rust` kernelspec is installed).

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! [ -x .venv/bin/python ]; then
    if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
    fi
    python3 -m venv .venv
fi
PY="$PWD/.venv/bin/python"
"$PY" -c "import nbclient, nbformat, nbconvert, jupyter_client, plotly" 2>/dev/null ||
    "$PY" -m pip install -q nbclient nbformat nbconvert jupyter_client plotly

if ! command -v evcxr_jupyter >/dev/null; then
    echo "installing evcxr_jupyter (about 9 minutes on 2 cores, once)"
    cargo install --locked evcxr_jupyter
fi
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src

export JUPYTER_PATH="$PWD/target/jupyter"
if ! [ -f "$JUPYTER_PATH/kernels/rust/kernel.json" ]; then
    evcxr_jupyter --install >/dev/null
fi
