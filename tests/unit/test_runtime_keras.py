"""The Keras callback (`bigmodel.runtime.keras.StepTimer`) in a real `model.fit`: one step
per training batch, the loss once per epoch, the timer closed when training ends. Needs
tensorflow-cpu (`pip install -e '.[tensorflow]'`, or `make test-frameworks`)."""

from __future__ import annotations

import importlib.util

import pytest

from bigmodel.runtime.keras import StepTimer
from bigmodel.runtime.stats import RankStats
from bigmodel.runtime.steps import WallStepTimer

pytestmark = [
    pytest.mark.frameworks,
    pytest.mark.skipif(
        importlib.util.find_spec("tensorflow") is None,
        reason="needs tensorflow-cpu: pip install -e '.[tensorflow]' (or make test-frameworks)",
    ),
]


def test_fit_counts_a_step_per_batch_and_publishes_them_with_the_loss() -> None:
    import numpy as np
    import tensorflow as tf

    published: list[RankStats] = []
    closed: list[bool] = []
    timer = WallStepTimer(publish=published.append, on_close=lambda: closed.append(True))
    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((40, 4), "float32"), np.zeros((40, 1), "float32")
    history = model.fit(x, y, batch_size=10, epochs=3, callbacks=[StepTimer(timer)], verbose=0)
    assert timer.stats.steps == 12
    assert published[-1].steps == 12  # the last publication (on close) has every step
    assert published[-1].loss == pytest.approx(history.history["loss"][-1])
    assert closed == [True]
