"""Write scikit-learn's 1,797 handwritten digits (8x8, shipped inside scikit-learn) as a 32-px PNG ImageFolder.

``train/<digit>/*.png`` (1,437 images) and ``val/<digit>/*.png`` (360), split 80/20 per class with
a fixed seed: the "own data" case ``scdd run --dataset imagefolder --data-root DIR`` is sized for.
``--size`` sets the side (8 keeps the originals); ``--colour`` paints each digit in a random colour
on a random background of another brightness (RGB; the colours carry no class information), a
colour case built from the same shipped data. ``--validation`` writes the training images only,
split 80/20 again into train/ and val/: a validation split carved from the training images.

    python benchmarks/make_digits_folder.py --out digits32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def _colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The digit in one random colour over a background colour at least 0.3 apart in mean brightness."""
    while True:
        ink, paper = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(ink.mean() - paper.mean()) >= 0.3:
            break
    alpha = np.asarray(image, dtype=np.float64)[:, :, None] / 255.0
    return Image.fromarray(np.round(255 * (alpha * ink + (1 - alpha) * paper)).astype(np.uint8), mode="RGB")


def write_digits_folder(out: Path, size: int = 32, seed: int = 0, colour: bool = False, validation: bool = False) -> dict[str, int]:
    """Write the folder; returns the image count per split."""
    digits = load_digits()
    pixels = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # 17 grey levels → 0-255
    index = np.arange(len(pixels))
    train, val = train_test_split(index, test_size=0.2, stratify=digits.target, random_state=seed)
    if validation:  # carve a validation split from the training images; the held-out images stay unseen
        train, val = train_test_split(train, test_size=0.2, stratify=digits.target[train], random_state=seed + 1)
    rng = np.random.default_rng(seed)
    counts = {}
    for split, members in (("train", train), ("val", val)):
        for i in sorted(members):
            folder = out / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(pixels[i], mode="L")
            if size != 8:
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            if colour:
                image = _colour(image, rng)
            image.save(folder / f"{i:04d}.png")
        counts[split] = len(members)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--colour", action="store_true", help="random ink and paper colours (RGB)")
    parser.add_argument("--validation", action="store_true", help="only the training images, split into train/ and val/")
    args = parser.parse_args()
    counts = write_digits_folder(args.out, args.size, args.seed, args.colour, args.validation)
    print(f"{args.out}: " + ", ".join(f"{split} {count}" for split, count in counts.items()))


if __name__ == "__main__":
    main()
