"""Step timer callbacks for PyTorch Lightning and Hugging Face Trainer.

Each class exists only where its library is installed; both just call `StepTimer.start`,
`stop` and `set_loss`. Lightning: `Trainer(callbacks=[StepTimerCallback(step_timer())])`.
Transformers: `Trainer(..., callbacks=[StepTimerTrainerCallback(step_timer())])`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from bigmodel.runtime.timer import StepTimer


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


_lightning = _optional("lightning.pytorch") or _optional("pytorch_lightning")
_transformers = _optional("transformers")

if _lightning is not None:
    _LightningCallback: Any = _lightning.Callback

    class StepTimerCallback(_LightningCallback):  # type: ignore[misc]
        """Times each training batch; publishes its loss every `log_every_n_steps` steps."""

        def __init__(self, timer: StepTimer) -> None:
            self.timer = timer

        def on_train_batch_start(self, *args: Any) -> None:
            self.timer.start()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *args: Any) -> None:
            self.timer.stop()
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if loss is not None and trainer.global_step % trainer.log_every_n_steps == 0:
                self.timer.set_loss(float(loss))

        def on_train_end(self, *args: Any) -> None:
            self.timer.close()


if _transformers is not None:
    _TrainerCallback: Any = _transformers.TrainerCallback

    class StepTimerTrainerCallback(_TrainerCallback):  # type: ignore[misc]
        """Times each optimizer step; publishes the loss whenever the Trainer logs it."""

        def __init__(self, timer: StepTimer) -> None:
            self.timer = timer

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.timer.start()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            self.timer.stop()

        def on_log(self, *args: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.timer.set_loss(logs["loss"])

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            self.timer.close()
