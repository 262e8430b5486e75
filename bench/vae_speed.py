"""VAE training speed: the course's training path against the seed recipe, same model.

The model is notebook 02's reference VAE (CS236 ``v1`` networks, z = 10), loaded from the
source notebook. Both paths are evaluated as the seed does: the bound on the fixed 100-image
test subset, binarized once with seed 0, averaged over 100 draws (``evaluate_lower_bound``),
every ``--eval-every`` iterations; evaluation time is not counted.

* seed recipe: torchvision ``MNIST`` + ``ToTensor`` through a ``DataLoader`` (batch 100,
  shuffled), dynamic binarization, Adam 1e-3, 20 000 iterations, torch's default threads.
* course path: ``helpers.train.train_vae`` (in-memory batches of 128, learning rate 3e-3 with
  a warm-up and a linear decay over the last 30 %, fused Adam), torch's default threads, for
  each budget in ``--course-iterations`` (the schedule ends with the budget).

Both run in one process with the course's ``autograder.course.torch_env.torch_env()`` (the script
starts itself again with it).

T1 = training time until the course path first reaches the seed recipe's final NELBO,
T2 = the seed recipe's time, R = T2 / T1, T3 = time until the course path reaches NELBO <= 100.

    python bench/vae_speed.py              # about 7 minutes on a quiet 2-core CPU
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course.torch_env import run_with_torch_env  # noqa: E402
from autograder.course.solutions import load_solution  # noqa: E402
from helpers import data, runtime  # noqa: E402
from helpers.train import evaluate_lower_bound, train_vae  # noqa: E402


def seed_recipe(vae_class, iterations: int, eval_every: int, x_eval: torch.Tensor) -> list[dict]:
    """CS236's loop: DataLoader over torchvision MNIST, batch 100, Adam 1e-3; history rows."""
    import torchvision
    from torchvision import transforms

    runtime.seed(0)
    ds = torchvision.datasets.MNIST(str(data.data_root()), train=True, download=False,
                                    transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(ds, batch_size=100, shuffle=True)
    model = vae_class(z_dim=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history, seconds, i = [], 0.0, 0
    while i < iterations:
        start = time.perf_counter()
        for xu, _ in loader:
            i += 1
            xu = torch.bernoulli(xu.reshape(xu.size(0), -1))
            opt.zero_grad()
            loss, _ = model.loss(xu)
            loss.backward()
            opt.step()
            if i % eval_every == 0 or i == iterations:
                seconds += time.perf_counter() - start
                history.append({"iteration": i, "seconds": seconds,
                                "value": evaluate_lower_bound(model, x_eval)[0]})
                print(f"  seed   it {i:>6}  {seconds:6.1f} s  NELBO {history[-1]['value']:.2f}", flush=True)
                start = time.perf_counter()
            if i == iterations:
                break
        else:
            seconds += time.perf_counter() - start
    return history


def course_path(vae_class, iterations: int, eval_every: int, x_eval: torch.Tensor,
                threads: int) -> list[dict]:
    runtime.seed(0)
    model = vae_class(z_dim=10)
    x_train, _ = data.load("mnist", "train")
    hist = train_vae(model, x_train, iterations, generator=torch.Generator().manual_seed(0),
                     evaluate=lambda m: evaluate_lower_bound(m, x_eval)[0], eval_every=eval_every,
                     num_threads=threads, progress=False)
    for r in hist:
        print(f"  course({iterations}) it {r['iteration']:>6}  {r['seconds']:6.1f} s  NELBO {r['value']:.2f}", flush=True)
    return hist


def first_time(histories: list[list[dict]], target: float) -> float:
    times = [r["seconds"] for h in histories for r in h if r["value"] <= target]
    return min(times) if times else float("inf")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed-iterations", type=int, default=20_000)
    p.add_argument("--course-iterations", type=int, nargs="+", default=[6_000, 11_000])
    p.add_argument("--course-threads", type=int, default=None,
                   help="threads of the course path (default: torch's default, as the seed recipe)")
    p.add_argument("--eval-every", type=int, default=1_000)
    args = p.parse_args(argv)

    default_threads = torch.get_num_threads()
    args.course_threads = args.course_threads or default_threads
    vae_class = load_solution("02_vae", until="negative_elbo_bound", grading=False)["VAE"]
    x_eval, _ = data.fixed_test_subset("mnist")
    print(f"torch {torch.__version__}, {default_threads} default threads, "
          f"{torch.backends.cpu.get_cpu_capability()} kernels (autograder.course.torch_env)")
    courses = [course_path(vae_class, n, min(args.eval_every, n // 10), x_eval, args.course_threads)
               for n in args.course_iterations]
    torch.set_num_threads(default_threads)
    seed = seed_recipe(vae_class, args.seed_iterations, args.eval_every, x_eval)
    t2, target = seed[-1]["seconds"], seed[-1]["value"]
    t1, t3 = first_time(courses, target), first_time(courses, 100.0)
    print(f"seed recipe: final NELBO {target:.2f} after {t2:.0f} s; course best NELBO "
          f"{min(r['value'] for h in courses for r in h):.2f}")
    print(f"course: {t1:.0f} s, seed recipe: {t2:.0f} s, ratio: {t2 / t1:.1f}, course to 100: {t3:.0f} s")


if __name__ == "__main__":
    run_with_torch_env()
    main()
