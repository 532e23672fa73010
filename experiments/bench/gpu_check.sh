#!/usr/bin/env bash
# The GPU checks in one call: the machine, the default run end to end (and a resume of it), a
# profile of the homework's DCGAN step, then experiments/bench/bench.py against PyTorch eager on the
# same GPU, float32 and bfloat16. Writes its logs and results under $OUT (default /tmp/gpu_check).
# Run it from the repository root (the Python parts run as modules: python3 -m ...):
#
#   bash experiments/bench/gpu_check.sh [bench seconds, default 240]
#   PARTS=profile,bench bash experiments/bench/gpu_check.sh 300    # some parts only (train, profile, bench)
#
# Packages the GPU image lacks (mlxtend for the digits, tensorboardX) come as wheels in .whl/
# (git-ignored), fetched beforehand on a machine with PyPI:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl mlxtend==0.25.0 tensorboardX==2.6.5
set -u
OUT=${OUT:-/tmp/gpu_check}
BENCH_S=${1:-240}
PARTS=${PARTS:-train,profile,bench}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/tmp/site
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  nproc
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, torch; print('jax', jax.__version__, jax.devices(), \
'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'torch', torch.__version__, torch.cuda.is_available())"
} 2>&1 | tee "$OUT/env.txt"

# 1. The default command end to end, then one more epoch resumed from its checkpoint.
if [[ $PARTS == *train* ]]; then
SECONDS=0
timeout 170 python3 -m ganjax.train --workdir=/tmp/default_run 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" > "$OUT/train.log"
echo "default run: exit ${PIPESTATUS[0]} after $SECONDS s" | tee -a "$OUT/train.log"
SECONDS=0
timeout 60 python3 -m ganjax.train --workdir=/tmp/default_run --n_epoch=31 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" >> "$OUT/train.log"
echo "resumed for one epoch: exit ${PIPESTATUS[0]} after $SECONDS s" | tee -a "$OUT/train.log"
tail -n 4 "$OUT/train.log"
cp /tmp/default_run/metrics.jsonl "$OUT/" 2>/dev/null
cp /tmp/default_run/samples/epoch_030.png "$OUT/default_run_epoch_030.png" 2>/dev/null
fi

# 2. Where the homework DCGAN's step time goes on this GPU, at batch 256 (float32, then bfloat16).
if [[ $PARTS == *profile* ]]; then
  for dtype in float32 bfloat16; do
    timeout 60 python3 -m experiments.bench.profile_step --chunk 5 --top 25 \
      --config="--preset=hw6-gan --resolution=64 --channels=3 --batch_size=256 --dtype=$dtype" 2>&1 \
      | grep -v "^W\|^I" | tee -a "$OUT/profile.txt" | head -n 14
  done
fi

# 3. ganjax against PyTorch eager on this GPU: the homework's DCGAN (float32 and bfloat16) first,
#    then the toy MLP, then the 32x32 DCGAN, each within its share of the seconds given.
if [[ $PARTS == *bench* ]]; then
  bench() { timeout $(($1 + 90)) python3 -m experiments.bench.bench --budget "$1" --out "$OUT" "${@:2}" 2>&1 | grep -v "^|\|^{"; }
  bench $((BENCH_S * 11 / 20)) --arch dcgan-64 --dtype float32,bfloat16
  bench $((BENCH_S * 5 / 20)) --arch mlp
  bench $((BENCH_S * 4 / 20)) --arch dcgan-32 --batch 64
  python3 -m experiments.bench.bench --table "$OUT/bench.jsonl" | tee "$OUT/bench.md" | cut -d'|' -f2-10,13,15
fi
