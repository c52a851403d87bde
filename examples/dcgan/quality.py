"""Does the generator draw the digit it is asked for? A digit classifier trained on the held-out 30% of the digits
(which the GAN never saw) reads ``--samples`` generated images per digit (seeded noise, run through onnxruntime).

    python -m examples.dcgan.quality [--model examples/dcgan/generator.onnx] [--samples 100] [--json]

Exits 1 when fewer than 90% of all samples, or 75% of one digit's, read as asked."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from examples.dcgan import digits

HERE = Path(__file__).resolve().parent
OVERALL, PER_DIGIT = 0.90, 0.75


@dataclass
class Quality:
    per_digit: list[float]  # share read as the digit asked for, digit 0..9
    overall: float
    classifier_on_real: float  # the classifier's accuracy on the GAN's own (real) split: how far it can be trusted
    samples: int

    @property
    def ok(self) -> bool:
        return self.overall >= OVERALL and min(self.per_digit) >= PER_DIGIT

    def table(self) -> str:
        head = "| digit | " + " | ".join(map(str, range(10))) + " | all |"
        rule = "|---" * 12 + "|"
        row = "| read as asked | " + " | ".join(f"{p:.0%}" for p in self.per_digit) + f" | **{self.overall:.1%}** |"
        return "\n".join([head, rule, row])


def classifier():
    """An RBF SVM on the held-out split's 28x28 images, each also shifted by 2 pixels."""
    from sklearn.svm import SVC

    data = digits.split()
    x, y = digits.shifted(data.held_x, data.held_y)
    model = SVC(C=10, gamma="scale").fit(x.reshape(len(x), -1), y)
    return model, data


def generate(model_path: Path, z: np.ndarray) -> np.ndarray:
    """Images in [0, 1], (N, 28, 28), one onnxruntime run per input (the model's batch is 1, as the page's)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (name,) = (i.name for i in session.get_inputs())
    out = [session.run(None, {name: row[None]})[0] for row in z]
    return (np.concatenate(out).reshape(len(z), 28, 28) + 1) / 2


def measure(model_path: Path, samples: int = 100, seed: int = 0) -> Quality:
    model, data = classifier()
    on_real = float((model.predict(data.gan_x.reshape(len(data.gan_x), -1)) == data.gan_y).mean())
    per_digit = []
    for digit in range(digits.CLASSES):
        images = generate(model_path, digits.noise(digit, samples, seed + digit))
        per_digit.append(float((model.predict(images.reshape(samples, -1)) == digit).mean()))
    return Quality(per_digit, float(np.mean(per_digit)), on_real, samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=HERE / "generator.onnx", help="the generator (ONNX)")
    parser.add_argument("--samples", type=int, default=100, help="samples per digit (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.exit(2, f"quality: {args.model}: no such file\n")
    q = measure(args.model, args.samples, args.seed)
    if args.json:
        print(json.dumps({"per_digit": q.per_digit, "overall": q.overall, "classifier_on_real": q.classifier_on_real}))
    else:
        print(q.table())
        print(
            f"\n{q.samples} samples per digit; the classifier (held-out split) reads the GAN's real training digits "
            f"right {q.classifier_on_real:.1%} of the time. Bar: {OVERALL:.0%} overall, {PER_DIGIT:.0%} per digit: "
            + ("met" if q.ok else "NOT met")
        )
    return 0 if q.ok else 1


if __name__ == "__main__":
    sys.exit(main())
