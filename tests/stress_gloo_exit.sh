#!/usr/bin/env bash
# Repeat the 2-process gloo training run N times (default 30) and count clean exits; an abort at exit
# ("terminate called without an active exception", SIGABRT) used to hit about 1 run in 4.
#   bash tests/stress_gloo_exit.sh [N]
set -u
n=${1:-30}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for i in $(seq 1 "$n"); do
  rm -rf "$tmp/out"
  if ! OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc_per_node=2 -m fastddgan.train \
      --dataset ring8 --log-every 5 --sample-every 0 --batch-size 64 --sample-n 200 --out "$tmp/out" --steps 12 \
      --ckpt-every 6 --device cpu >"$tmp/log" 2>&1 || grep -q "terminate called" "$tmp/log"; then
    failed=$((failed + 1))
    echo "run $i failed:"; grep -m3 "terminate\|exitcode\|Error" "$tmp/log"
  fi
done
echo "gloo exit stress: $((n - failed)) of $n runs clean"
[ "$failed" -eq 0 ]
