#!/usr/bin/env bash
# Install the peer verifiers of bench/peers.py into scratch venvs, from their public source.
#
#   bash bench/install_peers.sh [DIR]        (default DIR: ../peers next to this checkout)
#
# nnenum (Stanley Bak, GPL-3): `git clone https://github.com/stanleybak/nnenum` into DIR/nnenum-src
# (or put a checkout there yourself, e.g. where GitHub is unreachable), then `pip install .` into
# DIR/nnenum-venv. alpha-beta-CROWN (BSD-3): a checkout with its auto_LiRPA submodule in
# DIR/alpha-beta-CROWN, installed with its own requirements into DIR/abcrown-venv: TORCH_SPEC
# (default torch==2.14.1 torchvision==0.29.1, a pair whose torchvision imports beside its torch;
# on these machines pip takes both from the local disk) and auto_LiRPA with --no-deps (its pin
# torch<2.9 would pull another multi-gigabyte build). Its MIP refinement imports gurobipy (the
# pip package's size-limited licence suffices for mnistfc). onnx2pytorch: the Verified-Intelligence
# fork where it can be cloned, else PyPI's, whose ConvertModel lacks the fork's `quirks` argument:
# the script then adds that argument (ignored) to the installed copy, in the scratch venv only.
# A peer whose source cannot be obtained is skipped with a message (where GitHub is unreachable, put
# checkouts in DIR yourself: nnenum-src, alpha-beta-CROWN with auto_LiRPA inside); the script ends
# with the variables bench/peers.py reads. Nothing here is used by optcert.
set -u
DIR=$(realpath -m "${1:-$(dirname "$0")/../../peers}")
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
mkdir -p "$DIR"
exports=()

fetch() {  # fetch NAME URL: a checkout in DIR/NAME, or a message and non-zero status
    [ -d "$DIR/$1" ] && return 0
    git clone --depth 1 --recursive "$2" "$DIR/$1" >/dev/null 2>&1 && return 0
    echo "skip: could not clone $2 into $DIR/$1 (put a checkout there and rerun)" >&2
    return 1
}

if fetch nnenum-src https://github.com/stanleybak/nnenum; then
    if [ ! -x "$DIR/nnenum-venv/bin/python" ]; then
        python3 -m venv "$DIR/nnenum-venv" && "$DIR/nnenum-venv/bin/pip" install -q "$DIR/nnenum-src" \
            || echo "skip: nnenum did not install" >&2
    fi
    "$DIR/nnenum-venv/bin/python" -c "import nnenum" 2>/dev/null \
        && exports+=("NNENUM_PYTHON=$DIR/nnenum-venv/bin/python")
fi

if fetch alpha-beta-CROWN https://github.com/Verified-Intelligence/alpha-beta-CROWN; then
    if [ ! -x "$DIR/abcrown-venv/bin/python" ]; then
        python3 -m venv "$DIR/abcrown-venv" \
            && "$DIR/abcrown-venv/bin/pip" install -q $TORCH_SPEC gurobipy \
            && "$DIR/abcrown-venv/bin/pip" install -q --no-deps -e "$DIR/alpha-beta-CROWN/auto_LiRPA" \
            && "$DIR/abcrown-venv/bin/pip" install -q onnx onnxruntime onnxoptimizer onnxsim skl2onnx pyyaml \
                pandas appdirs sortedcontainers packaging psutil tqdm scipy scikit-learn protobuf mpmath ninja graphviz \
            && { "$DIR/abcrown-venv/bin/pip" install -q --no-deps \
                     git+https://github.com/Verified-Intelligence/onnx2pytorch.git 2>/dev/null \
                 || "$DIR/abcrown-venv/bin/pip" install -q --no-deps onnx2pytorch; } \
            || echo "skip: alpha-beta-CROWN did not install" >&2
    fi
    model=$(ls "$DIR"/abcrown-venv/lib/python3*/site-packages/onnx2pytorch/convert/model.py 2>/dev/null | head -1)
    if [ -n "$model" ] && ! grep -q quirks "$model"; then
        sed -i 's/enable_pruning=False,$/enable_pruning=False, quirks=None,/' "$model" \
            && echo "note: PyPI's onnx2pytorch given an ignored 'quirks' argument ($model)" >&2
    fi
    [ -f "$DIR/alpha-beta-CROWN/complete_verifier/abcrown.py" ] \
        && "$DIR/abcrown-venv/bin/python" -c "import auto_LiRPA, onnx2pytorch" 2>/dev/null \
        && exports+=("ABCROWN_PYTHON=$DIR/abcrown-venv/bin/python" \
                     "ABCROWN_DIR=$DIR/alpha-beta-CROWN/complete_verifier") \
        || echo "skip: alpha-beta-CROWN does not import (onnx2pytorch needs a torchvision built for this torch:" \
                "set TORCHVISION_SPEC, e.g. a CPU wheel)" >&2
fi

echo "# for bench/peers.py:"
for e in "${exports[@]}"; do echo "export $e"; done
