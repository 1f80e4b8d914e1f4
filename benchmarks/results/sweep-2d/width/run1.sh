#!/bin/bash
# run1.sh NAME DATA SEED ARGS... : train (1 thread), evaluate (n 4000, seed), analyse the final step
name=$1; data=$2; seed=$3; shift 3
d=/work/exp/width/$name
cd /work/main
[ -f $d/checkpoints/final.pt ] || OMP_NUM_THREADS=1 python -m fastddgan.train --dataset $data --model ddgan --seed $seed --threads 1 --out $d "$@" > $d.log 2>&1
OMP_NUM_THREADS=1 python -m fastddgan.evaluate $d/checkpoints/final.pt --n 4000 --seed $seed --out $d-eval.json > /dev/null 2>&1
python - $d-eval.json $name <<'PY' >> /work/exp/width/summary.txt
import json, sys
r = json.load(open(sys.argv[1])); m = r.get("metrics", r)
def f(k):
    for src in (r, r.get("metrics", {}), r.get("summary", {})):
        if isinstance(src, dict) and k in src: return src[k]
print(sys.argv[2], {k: f(k) for k in ("modes_covered", "high_quality", "spread", "offset", "mmd2", "sliced_wasserstein")})
PY
OMP_NUM_THREADS=1 python /work/exp/width/analyse.py $d/checkpoints/final.pt $data 2>&1 | tail -2 | sed "s/^/$name /" >> /work/exp/width/summary.txt
