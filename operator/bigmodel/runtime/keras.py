"""T_i for Keras loops: `model.fit(..., callbacks=[StepTimer()])`.

The callback times each training batch by wall time, from `on_train_batch_begin` to
`on_train_batch_end` (Keras calls the latter once the batch's train function has returned),
and never reads a tensor's value, so it forces no device sync (it takes Keras' logs as
tensors: Keras 2 would otherwise turn them into numbers, a sync, every batch); the loss is
published at the end of each epoch. It serves the same `/metrics` as the torch timer.
TensorFlow is imported when a callback is made, not when this module is; the callback is a
`tf.keras` callback, of Keras 3 or, with `TF_USE_LEGACY_KERAS=1`, of Keras 2 (`tf_keras`,
which MultiWorkerMirroredStrategy needs in `fit`).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from bigmodel.runtime.steps import WallStepTimer, step_timer


@functools.cache
def _callback_class() -> type:
    """The callback class, built on tf.keras' own base class at first use."""
    tf = importlib.import_module("tensorflow")

    class KerasStepTimer(tf.keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        """Times each training batch with `timer`; publishes the loss once per epoch."""

        def __init__(self, timer: WallStepTimer) -> None:
            super().__init__()
            self.timer = timer
            self._supports_tf_logs = True  # Keras 2: pass logs as tensors, no per-batch sync

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.timer.begin()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.timer.end()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None:  # once per epoch: a number, or a tensor read here
                self.timer.set_loss(float(loss))

        def on_train_end(self, logs: Any = None) -> None:
            self.timer.close()

    return KerasStepTimer


def StepTimer(timer: WallStepTimer | None = None) -> Any:
    """A Keras callback timing each training batch with `timer` (default: this pod's
    `bigmodel.runtime.steps.step_timer()`, serving `/metrics`)."""
    return _callback_class()(timer or step_timer())
