#!/usr/bin/python3
"""P1 side by side: fedsim vs PyTorch CPU training throughput, one thread.

Alternates the two (fedsim, then PyTorch, per repetition and config) so that
both see the same machine load, and prints per config the ratio of medians,
both medians and their min..max spread; then the Eigen 1024^3 GEMM peak and
the MLP batch-64 fraction of it.

  /usr/bin/python3 bench/p1_compare.py --bench build-ml/bench/train_throughput_bench

With --adversarial, the same for PGD-10 adversarial training (issue 10):
adv_throughput_bench's BM_AdvTrain* against pytorch_baseline's --adversarial
loop (no GEMM line).

  /usr/bin/python3 bench/p1_compare.py --adversarial \
      --bench build/bench/adv_throughput_bench --batches 32
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_baseline as pt  # noqa: E402  (sets the 1-thread env first)

# Training FLOPs per example (multiply-adds x 2) of the work both sides do:
# forward, weight gradients, and input gradients of every layer but the first.
MLP_FLOPS = 2 * (3 * (784 * 200 + 200 * 200 + 200 * 10) - 784 * 200)


def fedsim_rate(bench, name, batch, seconds, prefix="BM_Train"):
    out = subprocess.run(
        [bench, f"--benchmark_filter=^{prefix}{name}/{batch}/", "--benchmark_format=json",
         f"--benchmark_min_time={seconds}"],
        check=True, capture_output=True, text=True).stdout
    runs = json.loads(out)["benchmarks"]
    return runs[0]["items_per_second"]


def gemm_gflops(bench):
    out = subprocess.run([bench, "--benchmark_filter=BM_GemmPeak", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["benchmarks"][0]["GFLOPs"]


def spread(v):
    return f"{statistics.median(v):.0f} ({min(v):.0f}..{max(v):.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/train_throughput_bench",
                    help="path of the fedsim train_throughput_bench binary")
    ap.add_argument("--reps", type=int, default=5, help="alternated repetitions per config")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per measurement")
    ap.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp,cnn")
    ap.add_argument("--batches", default="10,32,64", help="comma-separated batch sizes")
    ap.add_argument("--adversarial", action="store_true",
                    help="PGD-10 adversarial training (--bench adv_throughput_bench)")
    args = ap.parse_args()
    prefix = "BM_AdvTrain" if args.adversarial else "BM_Train"
    label = "ADV" if args.adversarial else "P1"

    pt.torch.set_num_threads(1)
    print(f"torch {pt.torch.__version__}, threads {pt.torch.get_num_threads()}, "
          f"BLAS: {pt.loaded_blas()}", flush=True)
    makers = {"mlp": pt.mlp, "cnn": pt.cnn}
    mlp64 = None
    for name in args.models.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            ours, theirs = [], []
            for _ in range(args.reps):
                ours.append(
                    fedsim_rate(args.bench, name.capitalize(), batch, args.seconds, prefix))
                theirs.append(pt.measure(makers[name], batch, args.seconds, args.adversarial))
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"{label} {name} batch {batch}: ratio {ratio:.2f}x  fedsim {spread(ours)}  "
                  f"pytorch {spread(theirs)} samples/s, median (min..max) of {args.reps}",
                  flush=True)
            if name == "mlp" and batch == 64:
                mlp64 = statistics.median(ours)
    if args.adversarial:
        return
    peak = gemm_gflops(args.bench)
    print(f"GEMM 1024^3 float, Eigen, 1 thread: {peak:.1f} GFLOP/s")
    if mlp64 is not None:
        achieved = mlp64 * MLP_FLOPS / 1e9
        print(f"MLP batch 64: {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the GEMM peak")


if __name__ == "__main__":
    main()
