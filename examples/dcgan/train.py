"""Train the conditional DCGAN generator of the digits page on scikit-learn's digits, on the CPU, seeded.

    pip install -e '.[train]'          # PyTorch: an optional extra, make test never needs it
    python -m examples.dcgan.train     # about 10 minutes on 2 cores; writes generator.onnx, training.json, loss.svg

The generator is the seed page's: noise 100 + one-hot label 10 -> Linear -> BN -> ReLU -> 128x7x7 -> ConvTranspose
4x4/2 -> BN -> ReLU -> ConvTranspose 4x4/2 -> Tanh (kgen.graph.zoo.dcgan_generator builds the ONNX file from its
weights). The discriminator sees the image and the label (a projection of the label embedding) and also classifies
the digit (an auxiliary classifier), which is what makes the label stick to small data.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from examples.dcgan import digits
from kgen.graph import zoo

HERE = Path(__file__).resolve().parent


def build(torch):
    nn = torch.nn

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(digits.NOISE + digits.CLASSES, 128 * 49)
            self.bn1 = nn.BatchNorm1d(128 * 49)
            self.up1 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(64)
            self.up2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

        def forward(self, z):
            x = torch.relu(self.bn1(self.fc(z))).view(-1, 128, 7, 7)
            x = torch.relu(self.bn2(self.up1(x)))
            return torch.tanh(self.up2(x))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 64, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(64, 128, 4, 2, 1, bias=False),
                nn.BatchNorm2d(128),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Dropout(0.3),
            )
            self.real = nn.Linear(128 * 49, 1)
            self.embed = nn.Embedding(digits.CLASSES, 128 * 49)
            self.classes = nn.Linear(128 * 49, digits.CLASSES)

        def forward(self, x, label):
            h = self.features(x)
            realness = self.real(h).squeeze(1) + (self.embed(label) * h).sum(1) / 64.0
            return realness, self.classes(h)

    return Generator(), Discriminator()


def augment(torch, x):
    """Small random rotations, scales and shifts of a batch (N, 1, 28, 28): 1257 digits are few."""
    n = x.shape[0]
    angle = (torch.rand(n) - 0.5) * (2 * np.pi * 12 / 360)
    scale = 1.0 + (torch.rand(n) - 0.5) * 0.2
    shift = (torch.rand(n, 2) - 0.5) * (2 * 2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def role_weights(g) -> dict[str, np.ndarray]:
    """The generator's weights under the role names of ``zoo.dcgan_generator``."""

    def bn(m) -> np.ndarray:
        return np.stack([t.detach().numpy() for t in (m.weight, m.bias, m.running_mean, m.running_var)])

    return {
        "fc_w": g.fc.weight.detach().numpy().T,
        "fc_b": g.fc.bias.detach().numpy(),
        "bn1": bn(g.bn1),
        "up1_w": g.up1.weight.detach().numpy(),
        "bn2": bn(g.bn2),
        "up2_w": g.up2.weight.detach().numpy(),
        "up2_b": g.up2.bias.detach().numpy(),
    }


def train(steps: int, batch: int, seed: int, log_every: int = 50) -> tuple[object, list[dict]]:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    data = digits.split()
    x = torch.from_numpy(data.gan_x[:, None] * 2 - 1)
    y = torch.from_numpy(data.gan_y)
    g, d = build(torch)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ce = torch.nn.functional.cross_entropy
    history: list[dict] = []
    sums = np.zeros(4)
    start = time.monotonic()
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(x), (batch,))
        real, label = augment(torch, x[pick]), y[pick]
        fake_label = torch.randint(0, digits.CLASSES, (batch,))
        z = torch.cat([torch.randn(batch, digits.NOISE), torch.nn.functional.one_hot(fake_label, 10).float()], 1)
        fake = g(z)

        r_real, c_real = d(real, label)
        r_fake, _ = d(fake.detach(), fake_label)
        loss_d = bce(r_real, torch.full_like(r_real, 0.9)) + bce(r_fake, torch.zeros_like(r_fake)) + ce(c_real, label)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

        r_gen, c_gen = d(fake, fake_label)
        loss_g = bce(r_gen, torch.ones_like(r_gen)) + ce(c_gen, fake_label)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

        sums += [loss_d.item(), loss_g.item(), ce(c_real, label).item(), ce(c_gen, fake_label).item()]
        if step % log_every == 0:
            mean = sums / log_every
            sums[:] = 0
            history.append(
                {"step": step, "loss_d": mean[0], "loss_g": mean[1], "class_real": mean[2], "class_fake": mean[3]}
            )
            elapsed = time.monotonic() - start
            print(
                f"step {step}/{steps}  D {mean[0]:.3f}  G {mean[1]:.3f}  class real {mean[2]:.3f} fake {mean[3]:.3f}"
                f"  {elapsed:.0f} s",
                flush=True,
            )
    g.eval()
    return g, history


def plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in (
        ("loss_d", "discriminator"),
        ("loss_g", "generator"),
        ("class_fake", "generator's digits misread (CE)"),
    ):
        ax.plot(steps, [h[key] for h in history], label=label)
    ax.set_xlabel("step (batch of 64)")
    ax.set_ylabel("loss, mean over 50 steps")
    ax.set_title("conditional DCGAN on scikit-learn's digits (70% split), seeded")
    ax.legend()
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None}))


def write_atomic(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp_name)`` into a file beside ``path``, then rename it there: no half-written output."""
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=path.suffix, delete=False) as tmp:
        pass
    try:
        write(tmp.name)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6000, help="training steps (default 6000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE, help="folder for generator.onnx, training.json, loss.svg")
    args = parser.parse_args(argv)
    if args.steps < 50 or args.batch < 1:  # a loss point is the mean of 50 steps
        parser.exit(2, f"train: --steps must be at least 50 and --batch at least 1 (got {args.steps}, {args.batch})\n")
    try:
        import torch  # noqa: F401
    except ImportError:
        parser.exit(2, "train: PyTorch is not installed; pip install -e '.[train]'\n")
    start = time.monotonic()
    g, history = train(args.steps, args.batch, args.seed)
    minutes = (time.monotonic() - start) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    model = zoo.dcgan_generator(weights=role_weights(g))
    write_atomic(args.out / "generator.onnx", lambda tmp: zoo.save(model, tmp))
    record = {"steps": args.steps, "batch": args.batch, "seed": args.seed, "minutes": round(minutes, 1)}
    text = json.dumps({**record, "history": history}, indent=1) + "\n"
    write_atomic(args.out / "training.json", lambda tmp: Path(tmp).write_text(text))
    plot(history, args.out / "loss.svg")
    print(f"train: {args.steps} steps in {minutes:.1f} min; wrote {args.out / 'generator.onnx'}, loss.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
