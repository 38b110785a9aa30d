#!/usr/bin/python3
"""P2 and P6 (BENCHMARKS.md, issue 14): fedsim against a PyTorch FedAvg loop on
the pfl recipe (scenarios/pfl_fmnist.textproto).

The recipe: Fashion-MNIST split IID over 1,000 clients of 60 images, MLP
784-200-200-10, FedAvg with 50 clients per round, one epoch of batch 10 at
lr 0.1, 40 rounds = 2,000 client updates. Both sides start from the same
initialization scheme (He-uniform for the layers followed by ReLU, Glorot-
uniform for the last layer, zero biases) and scale pixels by 1/255.

Runs, alternated, --reps times each (median, min and max):
  fedsim --inprocess --slots=1   one training slot (against one PyTorch thread)
  fedsim --inprocess             all slots (the whole machine)
  fedsim --workers=2             two forked worker processes (P6; local links)
  fedsim --workers=1 --slots=2   one worker process with two slots (P6, the
                                 same cores in one worker)
  pytorch                        a sequential loop, one thread, and two threads
                                 (a child process with its thread pools at 2)
and prints client updates per second, the ratios (P2: one slot / one PyTorch
thread >= 4, all slots / PyTorch's best of 1 and 2 threads >= 5; P6: each
multi-process mode / in-process wall <= 1.15) and both sides' final test accuracy (they should
agree within a point).

fedsim's updates/s use the run's own wall time (manifest.json "wall_s": the
engine's run, after the data is loaded), and PyTorch's the time of its
training loop (also after loading); the end-to-end process wall of each fedsim
run is printed beside it.

  /usr/bin/python3 bench/p2_compare.py [--reps 3] [--fedsim build/tools/fedsim]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# The P1 baseline's import pins every thread pool torch may use to one
# thread before torch loads (and exits with the install hint without torch),
# so both PyTorch figures run under the same settings. numpy comes with
# python3-torch.
from pytorch_baseline import nn, torch  # bench/, this script's own folder
import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
SCENARIO = "scenarios/pfl_fmnist.textproto"
CLIENTS, PER_CLIENT, PER_ROUND, BATCH, LR, ROUNDS = 1000, 60, 50, 10, 0.1, 40


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load():
    def images(name):
        return torch.from_numpy(read_idx(name).reshape(-1, 784).astype(np.float32) / 255.0)

    def labels(name):
        return torch.from_numpy(read_idx(name).astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def mlp():
    model = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                          nn.Linear(200, 10))
    with torch.no_grad():
        for i, layer in enumerate([model[0], model[2], model[4]]):
            fan_in, fan_out = layer.in_features, layer.out_features
            bound = (6.0 / fan_in) ** 0.5 if i < 2 else (6.0 / (fan_in + fan_out)) ** 0.5
            layer.weight.uniform_(-bound, bound)
            layer.bias.zero_()
    return model


def pytorch_fedavg(data, seed):
    """The sequential FedAvg loop: returns (updates/s, test accuracy)."""
    x, y, tx, ty = data
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    parts = rng.permutation(len(x))[:CLIENTS * PER_CLIENT].reshape(CLIENTS, PER_CLIENT)
    global_model = mlp()
    local = mlp()
    opt = torch.optim.SGD(local.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(ROUNDS):
        chosen = rng.choice(CLIENTS, PER_ROUND, replace=False)
        sums = [torch.zeros_like(p) for p in global_model.parameters()]
        for c in chosen:
            with torch.no_grad():
                for lp, gp in zip(local.parameters(), global_model.parameters()):
                    lp.copy_(gp)
            rows = torch.from_numpy(parts[c][rng.permutation(PER_CLIENT)])
            for b in range(0, PER_CLIENT, BATCH):
                idx = rows[b:b + BATCH]
                opt.zero_grad(set_to_none=True)
                loss_fn(local(x[idx]), y[idx]).backward()
                opt.step()
            with torch.no_grad():
                for s, lp in zip(sums, local.parameters()):
                    s.add_(lp)  # equal weights: every client holds 60 examples
        with torch.no_grad():
            for gp, s in zip(global_model.parameters(), sums):
                gp.copy_(s / PER_ROUND)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (global_model(tx).argmax(1) == ty).float().mean().item()
    return ROUNDS * PER_ROUND / elapsed, accuracy


def fedsim_run(binary, mode):
    """One fedsim run: (updates/s over the run's wall_s, process wall s, accuracy)."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        start = time.perf_counter()
        proc = subprocess.run([binary, "run", SCENARIO, f"--run_dir={run_dir}"] + mode,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"p2_compare: fedsim {' '.join(mode)} failed:\n{proc.stderr}")
        with open(os.path.join(run_dir, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(run_dir, "metrics.csv")) as f:
            rows = [line.rstrip("\n").split(",") for line in f]
        accuracy = float(rows[-1][rows[0].index("test_accuracy")])
        updates = int(rows[-1][rows[0].index("updates_applied")])
        return updates / manifest["wall_s"], wall, accuracy


def pytorch_two_threads(seed):
    """The PyTorch loop with two threads, in a child whose pools are sized before
    torch loads: (updates/s, test accuracy)."""
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--pytorch_only=2",
                           f"--seed={seed}"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"p2_compare: the two-thread PyTorch run failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["rate"], result["accuracy"]


def summary(values):
    return f"{statistics.median(values):8.1f} (min {min(values):.1f}, max {max(values):.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="runs of each side (default 3)")
    ap.add_argument("--fedsim", default="build/tools/fedsim", help="the fedsim binary")
    ap.add_argument("--seed", type=int, default=1, help="PyTorch side's seed")
    ap.add_argument("--pytorch_only", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pytorch_only > 0:  # the two-thread child (pytorch_two_threads)
        torch.set_num_threads(args.pytorch_only)
        rate, acc = pytorch_fedavg(load(), args.seed)
        print(json.dumps({"rate": rate, "accuracy": acc}))
        return
    if not os.path.exists(args.fedsim):
        sys.exit(f"p2_compare: {args.fedsim} not found; build first (scripts/build)")
    torch.set_num_threads(1)
    data = load()
    modes = {"fedsim 1 slot": ["--inprocess", "--slots=1"],
             "fedsim all slots": ["--inprocess"],
             "fedsim 2 workers": ["--workers=2"],
             "fedsim 1 worker x 2": ["--workers=1", "--slots=2"]}
    rates = {name: [] for name in list(modes) + ["pytorch 1 thread", "pytorch 2 threads"]}
    walls = {name: [] for name in modes}
    accuracy = {}
    for rep in range(args.reps):
        for name, mode in modes.items():
            rate, wall, acc = fedsim_run(args.fedsim, mode)
            rates[name].append(rate)
            walls[name].append(wall)
            accuracy[name] = acc
        rate, acc = pytorch_fedavg(data, args.seed + rep)
        rates["pytorch 1 thread"].append(rate)
        accuracy.setdefault("pytorch 1 thread", []).append(acc)
        rate, acc = pytorch_two_threads(args.seed + rep)
        rates["pytorch 2 threads"].append(rate)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)

    print(f"pfl recipe, {ROUNDS} rounds x {PER_ROUND} clients, {os.cpu_count()} cores, "
          f"median of {args.reps}")
    print(f"{'side':20} {'updates/s':>8} {'':24} {'process wall s':>16}")
    for name in rates:
        wall = f"{statistics.median(walls[name]):.2f}" if name in walls else "-"
        print(f"{name:20} {summary(rates[name])} {wall:>16}")
    torch_rate = statistics.median(rates["pytorch 1 thread"])
    torch_best = max(torch_rate, statistics.median(rates["pytorch 2 threads"]))
    one = statistics.median(rates["fedsim 1 slot"])
    every = statistics.median(rates["fedsim all slots"])
    print(f"P2 one slot / PyTorch thread:  {one / torch_rate:.2f}x (goal >= 4)")
    print(f"P2 all slots / PyTorch, best of 1 and 2 threads: {every / torch_best:.2f}x "
          "(goal >= 5)")
    for workers in ("fedsim 2 workers", "fedsim 1 worker x 2"):
        p6 = statistics.median(walls[workers]) / statistics.median(walls["fedsim all slots"])
        p6_run = every / statistics.median(rates[workers])
        print(f"P6 {workers[7:]} / in-process: {p6:.2f}x process wall, {p6_run:.2f}x run wall "
              "(goal <= 1.15)")
    torch_acc = accuracy.pop("pytorch 1 thread")
    print("test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracy.items()) +
          f", pytorch {statistics.mean(torch_acc):.4f} (mean over seeds "
          f"{args.seed}..{args.seed + args.reps - 1})")


if __name__ == "__main__":
    main()
