"""T_i for Keras loops: `model.fit(..., callbacks=[StepTimer()])`.

The callback times each call of the model's train function by wall time: one training batch
(or `steps_per_execution` of them), exactly what Keras' `on_train_batch_begin` and
`on_train_batch_end` bracket, without those per-batch hooks: a callback that implements them
makes Keras dispatch and convert logs for every batch, which costs tens of microseconds a
step, more than the timing itself. It wraps `model.train_function` when training begins and
puts it back when training ends; it never reads a tensor's value, so it forces no device
sync, and publishes the loss at the end of each epoch. It serves the same `/metrics` as the
torch timer. TensorFlow is imported when a callback is made, not when this module is; the
callback is a `tf.keras` callback, of Keras 3 or, with `TF_USE_LEGACY_KERAS=1`, of Keras 2
(`tf_keras`, which MultiWorkerMirroredStrategy needs in `fit`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from bigmodel.runtime.steps import WallStepTimer, step_timer

# The attribute of a timed train function that holds the function it times.
_UNTIMED = "_bigmodel_untimed"


def timed_train_function(train: Callable[[Any], Any], timer: WallStepTimer) -> Callable[[Any], Any]:
    """`train` (Keras' train function, or one this wrapped before) timed by `timer`, one
    step per call; a call that raises is not counted (the next `begin` replaces it)."""
    untimed = getattr(train, _UNTIMED, train)
    begin, end = timer.begin, timer.end

    def timed(iterator: Any) -> Any:
        begin()
        logs = untimed(iterator)
        end()
        return logs

    setattr(timed, _UNTIMED, untimed)
    return timed


@functools.cache
def _callback_class() -> type:
    """The callback class, built on tf.keras' own base class at first use."""
    tf = importlib.import_module("tensorflow")

    class KerasStepTimer(tf.keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        """Times each call of the train function with `timer`; publishes the loss once per
        epoch."""

        def __init__(self, timer: WallStepTimer) -> None:
            super().__init__()
            self.timer = timer

        def on_train_begin(self, logs: Any = None) -> None:
            self.model.train_function = timed_train_function(self.model.train_function, self.timer)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None:  # once per epoch: a number, or a tensor read here
                self.timer.set_loss(float(loss))

        def on_train_end(self, logs: Any = None) -> None:
            train = self.model.train_function
            self.model.train_function = getattr(train, _UNTIMED, train)
            self.timer.close()

    return KerasStepTimer


def StepTimer(timer: WallStepTimer | None = None) -> Any:
    """A Keras callback timing each training batch with `timer` (default: this pod's
    `bigmodel.runtime.steps.step_timer()`, serving `/metrics`)."""
    return _callback_class()(timer or step_timer())
