"""The Keras callback (`bigmodel.runtime.keras.StepTimer`): each call of the train function
timed as one step, the loss once per epoch, the train function given back and the timer
closed when training ends. The `model.fit` tests need tensorflow-cpu
(`pip install -e '.[tensorflow]'`, or `make test-frameworks`)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from bigmodel.runtime.keras import StepTimer, timed_train_function
from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.steps import WallStepTimer

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="needs tensorflow-cpu: pip install -e '.[tensorflow]' (or make test-frameworks)",
)


def test_each_call_of_the_timed_train_function_is_one_step() -> None:
    timer = WallStepTimer()
    train = timed_train_function(lambda iterator: {"loss": iterator}, timer)
    assert [train(1), train(2)] == [{"loss": 1}, {"loss": 2}]
    assert timer.stats.steps == 2


def test_a_train_function_wrapped_again_is_timed_once() -> None:
    first, second = WallStepTimer(), WallStepTimer()
    train = timed_train_function(timed_train_function(lambda iterator: None, first), second)
    train(None)
    assert (first.stats.steps, second.stats.steps) == (0, 1)


def test_a_call_that_raises_is_not_counted() -> None:
    def exhausted(iterator: Any) -> None:
        raise StopIteration

    timer = WallStepTimer()
    with pytest.raises(StopIteration):
        timed_train_function(exhausted, timer)(None)
    assert timer.stats.steps == 0


def _model_and_data() -> tuple[Any, Any, Any]:
    import numpy as np
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model, np.ones((40, 4), "float32"), np.zeros((40, 1), "float32")


@pytest.mark.frameworks
@needs_tensorflow
def test_fit_counts_a_step_per_batch_and_publishes_them_with_the_loss() -> None:
    published: list[RankStats] = []
    closed: list[bool] = []
    timer = WallStepTimer(publish=published.append, on_close=lambda: closed.append(True))
    model, x, y = _model_and_data()
    history = model.fit(x, y, batch_size=10, epochs=3, callbacks=[StepTimer(timer)], verbose=0)
    assert timer.stats.steps == 12
    assert published[-1].steps == 12  # the last publication (on close) has every step
    assert published[-1].loss == pytest.approx(history.history["loss"][-1])
    assert closed == [True]


@pytest.mark.frameworks
@needs_tensorflow
def test_a_later_fit_without_the_callback_is_not_timed() -> None:
    timer = WallStepTimer()
    model, x, y = _model_and_data()
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[StepTimer(timer)], verbose=0)
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert timer.stats.steps == 4
