#!/bin/bash
# usage: run_share.sh SHARE DIVERSITY NAME [extra flags]; 3 seeds, ring8 js T=10, then evaluation records
cd "$(dirname "$0")"  # runs/ and share-results.jsonl beside this script
share=$1; div=$2; name=$3; shift 3
mkdir -p runs
for seed in 0 1 2; do
  out=runs/$name-s$seed
  [ -f $out/checkpoints/final.pt ] || OMP_NUM_THREADS=1 python share_train.py $share --dataset ring8 --model ddgan --loss js --T 10 \
     --diversity $div --threads 1 --sample-every 0 --log-every 1000 --seed $seed --out $out "$@" > $out.log 2>&1
  OMP_NUM_THREADS=1 python -c "
import json, fastddgan.evaluate as E
r = E.evaluate('$out/checkpoints/final.pt', metrics='auto', n=4000, seed=$seed)
print(json.dumps({'cell': '$name', 'seed': $seed, 'share': $share, 'diversity': $div, 'metrics': r['metrics']}))" >> share-results.jsonl
done
