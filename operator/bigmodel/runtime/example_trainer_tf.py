"""Example TensorFlow trainer: a tiny Keras model under MultiWorkerMirroredStrategy, timed,
checkpointed and resumable.

    TF_CONFIG=... python -m bigmodel.runtime.example_trainer_tf --epochs 4

It reads its peers from `TF_CONFIG` (as a BigModelJob with `framework: tensorflow` sets it;
alone without it) and fits a small regression on a synthetic data set, on CPU or GPU. Worker
0, the chief, logs one JSON line per epoch and saves the weights to `--checkpoint-dir` after
each one, atomically (the other workers save too, into scratch directories: saving reads
variables that are all-reduced across workers); a restarted gang loads the latest and goes
on from the next epoch (every worker must see the directory). Each batch is timed by
`bigmodel.runtime.keras.StepTimer` for T_i; `--no-step-timer` leaves it out. Keras 2
(`tf_keras`, the `tensorflow` extra) runs the fit: Keras 3 cannot under this strategy.
A parameter-server or evaluator task (TFJob's roles) runs a TensorFlow server and waits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Keras 3 cannot `fit` under MultiWorkerMirroredStrategy (keras-team/keras#20585): use
# Keras 2 (the tf_keras package), as TensorFlow's own multi-worker tutorial does.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import tensorflow as tf

from bigmodel.runtime.keras import StepTimer
from bigmodel.runtime.trainer_io import log, non_negative, positive, positive_float

FEATURES = 16
WEIGHTS = "latest.weights.h5"
PROGRESS = "latest.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the options; a bad one exits with status 2 and names it."""
    parser = argparse.ArgumentParser(
        prog="bigmodel.runtime.example_trainer_tf", description=__doc__
    )
    parser.add_argument("--epochs", type=positive, default=4, help="total epochs (default 4)")
    parser.add_argument("--steps-per-epoch", type=positive, default=20, help="batches per epoch")
    parser.add_argument("--batch-size", type=positive, default=32, help="per worker")
    parser.add_argument("--width", type=positive, default=64, help="hidden units")
    parser.add_argument("--lr", type=positive_float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--checkpoint-dir", type=Path, help="where the chief saves; resumed from")
    parser.add_argument("--threads", type=non_negative, default=0, help="TF threads (0: auto)")
    parser.add_argument("--no-step-timer", action="store_true", help="no T_i (for benchmarks)")
    return parser.parse_args(argv)


def task() -> tuple[str, int]:
    """This process's task in TF_CONFIG: (type, index); ("worker", 0) without TF_CONFIG."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    found = config.get("task") or {}
    return str(found.get("type", "worker")), int(found.get("index", 0))


def dataset(batch_size: int) -> tf.data.Dataset:
    """Endless batches of y = x . w + noise, the same on every worker (fixed seed)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(FEATURES, 1)).astype("float32")
    x = rng.normal(size=(4096, FEATURES)).astype("float32")
    y = x @ w + 0.01 * rng.normal(size=(4096, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096, seed=0).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.batch(batch_size).with_options(options)


def build_model(width: int, lr: float) -> Any:
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(FEATURES,)),
            tf.keras.layers.Dense(width, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(lr), loss="mse")
    return model


def resume(model: Any, directory: Path | None) -> int:
    """Load the latest weights from `directory`; the epoch to start from (0: none)."""
    progress = directory / PROGRESS if directory else None
    if progress is None or not progress.exists():
        return 0
    epoch = int(json.loads(progress.read_text())["epoch"])
    model.load_weights(progress.parent / WEIGHTS)
    return epoch


def save(model: Any, directory: Path, epoch: int) -> None:
    """Write the weights, then the epoch they end, each atomically (temp file + rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".epoch-{epoch}.weights.h5"
    model.save_weights(temp)
    temp.replace(directory / WEIGHTS)
    progress = directory / f".{PROGRESS}.tmp"
    progress.write_text(json.dumps({"epoch": epoch}))
    progress.replace(directory / PROGRESS)


class EpochEnd(tf.keras.callbacks.Callback):  # type: ignore[misc]
    """After each epoch every worker saves the weights (saving may run collective ops, so all
    must): the chief into `directory`, the others into a scratch directory; the chief logs."""

    def __init__(self, directory: Path | None, chief: bool) -> None:
        super().__init__()
        self.directory, self.chief = directory, chief

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.directory is not None and self.chief:
            save(self.model, self.directory, epoch + 1)
        elif self.directory is not None:
            with tempfile.TemporaryDirectory() as scratch:
                save(self.model, Path(scratch), epoch + 1)
        if self.chief:
            loss = float((logs or {}).get("loss", float("nan")))
            log("epoch", epoch=epoch + 1, loss=round(loss, 5))


def serve_forever() -> None:
    """A parameter server or evaluator task: run a TensorFlow server until stopped."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=resolver.task_type,
        task_index=resolver.task_id,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    log("serving", task=resolver.task_type, index=resolver.task_id)
    server.join()


def train(args: argparse.Namespace) -> None:
    """Fit until `args.epochs`, from the latest checkpoint when there is one."""
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    chief = task() == ("worker", 0)
    workers = strategy.num_replicas_in_sync
    with strategy.scope():
        model = build_model(args.width, args.lr)
    first = resume(model, args.checkpoint_dir)
    if chief and first:
        log("resumed", epoch=first, checkpoint=str(args.checkpoint_dir))
    callbacks = [EpochEnd(args.checkpoint_dir, chief)]
    if not args.no_step_timer:
        callbacks.append(StepTimer())
    model.fit(
        dataset(args.batch_size * workers),
        epochs=args.epochs,
        initial_epoch=first,
        steps_per_epoch=args.steps_per_epoch,
        callbacks=callbacks,
        verbose=0,
    )
    if chief:
        log("done", epochs=args.epochs, workers=workers)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: a worker trains, any other task serves."""
    args = parse_args(argv)
    if task()[0] == "worker":
        train(args)
    else:
        serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
