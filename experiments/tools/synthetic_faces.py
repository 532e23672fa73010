"""Synthetic cartoon faces: a folder of 64x64 RGB PNGs to train and score image GANs on when the
homework's anime faces (or another face set) are not at hand.

    python -m experiments.tools.synthetic_faces /tmp/faces --n=20000

Each face is drawn at 4x the side and downsampled (Lanczos), so that edges are smooth as in
photos: a background colour, hair (a dark ellipse behind and a fringe above the face), a
skin-toned face ellipse, two eyes (white, iris of a random colour, pupil) placed symmetrically
with the gaze shared, eyebrows, a mouth that is a smile or an open mouth, sometimes blush. Every
attribute is drawn from numpy's generator seeded by --seed: the same seed writes the same files.
Not a face dataset, a structured distribution with a few discrete and continuous factors whose
samples a human can judge at a glance; FID numbers on it say nothing about real faces.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 96], [141, 85, 54]])
HAIR = np.array([[30, 25, 25], [90, 55, 30], [200, 160, 90], [170, 50, 40], [60, 80, 200], [230, 120, 180]])
EYES = np.array([[60, 110, 200], [60, 140, 70], [110, 70, 40], [150, 60, 170], [200, 50, 50]])


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: int = 18) -> tuple[int, ...]:
    return tuple(int(v) for v in np.clip(colour + rng.integers(-amount, amount + 1, 3), 0, 255))


def draw_face(rng: np.random.Generator, side: int = 64, oversample: int = 4) -> Image.Image:
    """One face, `side` pixels square."""
    s = side * oversample
    u = lambda lo, hi: rng.uniform(lo, hi) * s  # a length as a fraction of the canvas
    image = Image.new("RGB", (s, s), _jitter(rng, rng.integers(40, 216, 3), 0))
    draw = ImageDraw.Draw(image)
    cx, cy = u(0.45, 0.55), u(0.5, 0.58)
    rx, ry = u(0.24, 0.3), u(0.3, 0.36)
    hair = _jitter(rng, HAIR[rng.integers(len(HAIR))])
    hair_drop = u(0.0, 0.35)  # long hair falls below the face's centre
    draw.ellipse([cx - rx - u(0.04, 0.1), cy - ry - u(0.05, 0.1), cx + rx + u(0.04, 0.1), cy + hair_drop], fill=hair)
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_jitter(rng, SKIN[rng.integers(len(SKIN))], 10))
    fringe = u(0.06, 0.16)
    draw.chord([cx - rx, cy - ry - fringe, cx + rx, cy - ry + 2 * fringe], 180, 360, fill=hair)
    eye_dx, eye_y = rx * rng.uniform(0.35, 0.5), cy - ry * rng.uniform(0.0, 0.2)
    eye_r, eye_h = rx * rng.uniform(0.18, 0.26), rx * rng.uniform(0.2, 0.34)
    gaze = rng.uniform(-0.35, 0.35) * eye_r
    iris = _jitter(rng, EYES[rng.integers(len(EYES))])
    for sign in (-1, 1):
        ex = cx + sign * eye_dx
        draw.ellipse([ex - eye_r, eye_y - eye_h, ex + eye_r, eye_y + eye_h], fill=(250, 250, 250))
        draw.ellipse([ex + gaze - 0.7 * eye_r, eye_y - 0.8 * eye_h, ex + gaze + 0.7 * eye_r, eye_y + 0.8 * eye_h],
                     fill=iris)
        draw.ellipse([ex + gaze - 0.3 * eye_r, eye_y - 0.35 * eye_h, ex + gaze + 0.3 * eye_r, eye_y + 0.35 * eye_h],
                     fill=(15, 15, 15))
        brow_y = eye_y - eye_h - u(0.02, 0.05)
        draw.line([ex - eye_r, brow_y + sign * u(-0.015, 0.015), ex + eye_r, brow_y], fill=hair, width=max(1, int(u(0.01, 0.02))))
        if rng.random() < 0.4:
            draw.ellipse([ex - eye_r, eye_y + eye_h + u(0.01, 0.03), ex + eye_r, eye_y + eye_h + u(0.05, 0.07)],
                         fill=(240, 150, 150))
    mouth_y, mouth_w = cy + ry * rng.uniform(0.45, 0.6), rx * rng.uniform(0.2, 0.45)
    if rng.random() < 0.6:  # a smile
        draw.arc([cx - mouth_w, mouth_y - mouth_w * 0.6, cx + mouth_w, mouth_y + mouth_w * 0.6], 20, 160,
                 fill=(120, 30, 40), width=max(1, int(u(0.01, 0.02))))
    else:  # an open mouth
        draw.ellipse([cx - mouth_w * 0.6, mouth_y - mouth_w * 0.3, cx + mouth_w * 0.6, mouth_y + mouth_w * 0.5],
                     fill=(150, 40, 50))
    return image.resize((side, side), Image.LANCZOS)


def write_faces(folder: str, n: int, seed: int = 0, side: int = 64) -> None:
    """n faces as <folder>/<index>.png."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in tqdm(range(n), desc="synthetic faces", unit="img"):
        draw_face(rng, side).save(os.path.join(folder, f"{i:06d}.png"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--side", type=int, default=64)
    args = p.parse_args()
    write_faces(args.folder, args.n, args.seed, args.side)


if __name__ == "__main__":
    main()
