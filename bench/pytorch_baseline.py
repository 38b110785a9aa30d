#!/usr/bin/python3
"""PyTorch CPU baseline for bench/train_throughput_bench (BENCHMARKS.md P1).

Trains the same models as fedsim (MLP 784-200-200-10 and McMahan's CNN:
conv5x5x32-relu-pool-conv5x5x64-relu-pool-fc512-relu-fc10, "same" padding)
with SGD (lr 0.01, momentum 0.9) on random 28x28 inputs at batch 10, 32 and
64, with one thread, and prints samples/s medians over several repetitions.

--adversarial is the baseline for bench/adv_throughput_bench (issue 10): each
step first attacks the batch with PGD-10 (L-infinity, eps 0.1, step 0.01,
uniform random start, clamped to [0, 1]; the gradient with respect to the
input only, torch.autograd.grad, as Madry's and TRADES' code do) and then
takes the SGD step on the attacked batch.

  /usr/bin/python3 bench/pytorch_baseline.py [--reps 5] [--seconds 1.0]
  /usr/bin/python3 bench/pytorch_baseline.py --adversarial --batches 32
"""
import argparse
import os
import statistics
import sys
import time

# One thread for every pool torch may use: torch.set_num_threads(1) limits
# OpenMP/intra-op threads but not OpenBLAS's own pthreads. Set before import.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("pytorch_baseline: python3-torch is not installed (apt-get install python3-torch)",
          file=sys.stderr)
    sys.exit(1)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200),
                         nn.ReLU(), nn.Linear(200, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(7 * 7 * 64, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def pgd_linf(model, loss_fn, x, y, eps=0.1, step=0.01, steps=10):
    """PGD-k under L-infinity from a uniform random start, clamped to [0, 1]."""
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0.0, 1.0)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = loss_fn(model(xa), y)
        (g,) = torch.autograd.grad(loss, [xa])
        xa = xa.detach() + step * g.sign()
        xa = torch.min(torch.max(xa, x - eps), x + eps).clamp(0.0, 1.0)
    return xa.detach()


def measure(make, batch, seconds, adversarial=False):
    """Samples per CPU second of SGD steps over a pool of random examples."""
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    pool = 512
    x = torch.rand(pool, 1, 28, 28)
    y = torch.randint(0, 10, (pool,))
    pos = 0

    def step():
        nonlocal pos
        if pos + batch > pool:
            pos = 0
        xb, yb = x[pos:pos + batch], y[pos:pos + batch]
        pos += batch
        if adversarial:
            xb = pgd_linf(model, loss_fn, xb, yb)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    # CPU time of the process, as Google Benchmark's items_per_second uses on
    # the fedsim side: on a shared, oversubscribed machine wall time would
    # charge either side for the other tenants' load.
    steps = 0
    start = time.process_time()
    while True:
        step()
        steps += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return steps * batch / elapsed


def loaded_blas():
    """The BLAS shared libraries mapped into this process (after torch ran)."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "blas" in l.lower()})
        return ", ".join(libs) if libs else "none found in /proc/self/maps"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="repetitions per config")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per repetition")
    ap.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp,cnn")
    ap.add_argument("--batches", default="10,32,64", help="comma-separated batch sizes")
    ap.add_argument("--adversarial", action="store_true",
                    help="PGD-10 adversarial training steps (adv_throughput_bench)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    try:
        cfg = torch.__config__.show()
        keys = [f for f in cfg.replace(",", "\n").split() if f.startswith(("BLAS_INFO", "USE_MKLDNN"))]
        print("torch build: " + (", ".join(keys) if keys else "(no BLAS line)"))
    except Exception as e:  # informational only
        print(f"torch build: unknown ({e})")
    print("BLAS loaded: " + loaded_blas())

    makers = {"mlp": mlp, "cnn": cnn}
    for name in args.models.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            rates = [measure(makers[name], batch, args.seconds, args.adversarial)
                     for _ in range(args.reps)]
            kind = "pgd10-adv " if args.adversarial else ""
            print(f"pytorch {kind}{name} batch {batch}: median {statistics.median(rates):.1f} samples/s "
                  f"(min {min(rates):.1f} .. max {max(rates):.1f}, {args.reps} reps)",
                  flush=True)


if __name__ == "__main__":
    main()
