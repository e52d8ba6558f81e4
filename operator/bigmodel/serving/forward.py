"""The batched forward: right-pad the rows of every work, one forward, each row's last logits.

Runs on the device worker thread. Rows of different lengths share a batch thanks to the
model's causality: padding after a row's last token cannot change that position's logits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from bigmodel.serving.batcher import Work
from bigmodel.serving.kv_slots import CachedRow
from bigmodel.serving.model import ServedModel

PAD_ID = 0
"""Token id written after a row's end; any valid id would do (the model is causal)."""
WARMUP_LENGTH = 16


class ModelWork(Work):
    """A work the model runs: it gives a window of token ids per row and takes their logits."""

    def windows(self, context_length: int) -> list[torch.Tensor]:
        """One INT64 1-D tensor per row, at most `context_length` long."""
        raise NotImplementedError

    def advance(self, logits: torch.Tensor) -> None:
        """Take the next-token logits `[rows, vocab]` (on the device); set `done` when done."""
        raise NotImplementedError

    def cached_rows(self) -> Sequence[CachedRow]:
        """Rows a KV-cache decoder may advance instead of windows (a generation's); none here."""
        return ()


class ForwardRunner:
    """Runs batches of `ModelWork` through one served model on its device."""

    def __init__(self, served: ServedModel, device: torch.device) -> None:
        self.served = served
        self.device = device

    def next_token_logits(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits `[len(rows), vocab]` of the token after each row."""
        lengths = torch.tensor([len(row) for row in rows], device=self.device)
        tokens = pad_sequence(list(rows), batch_first=True, padding_value=PAD_ID)
        tokens = tokens.to(self.device, non_blocking=True)
        with torch.inference_mode():
            logits: torch.Tensor = self.served.module(tokens)
            return logits[torch.arange(len(rows), device=self.device), lengths - 1]

    def run(self, works: Sequence[ModelWork]) -> float:
        """One step over every row of `works`, each advanced; the seconds it took.

        With a KV-cache decoder, generations advance through it and the other works (`/v2`
        inferences) through one windowed forward; without one, everything is windowed.
        """
        started = time.perf_counter()
        decoder = self.served.decoder
        cached = [work for work in works if decoder is not None and work.cached_rows()]
        windowed = [work for work in works if work not in cached]
        if cached and decoder is not None:
            rows = [row for work in cached for row in work.cached_rows()]
            logits = decoder.step(rows)  # none for rows still prefilling
            counts = [sum(not row.prefilling for row in work.cached_rows()) for work in cached]
            self._advance(cached, counts, logits)
            # Rows that finished free their slots now, not at the next step (there may be none).
            decoder.retain(row for work in cached if not work.done for row in work.cached_rows())
        if windowed:
            self._run_windows(windowed)
        return time.perf_counter() - started

    def run_while(self, works: Sequence[ModelWork], again: Callable[[float], bool]) -> float:
        """Steps over `works` while `again(seconds of the step)` says so; the last one's seconds."""
        while True:
            seconds = self.run(works)
            if not again(seconds):
                return seconds

    def _run_windows(self, works: Sequence[ModelWork]) -> None:
        rows: list[torch.Tensor] = []
        counts: list[int] = []
        for work in works:
            windows = work.windows(self.served.context_length)
            rows.extend(windows)
            counts.append(len(windows))
        self._advance(works, counts, self.next_token_logits(rows))

    @staticmethod
    def _advance(works: Sequence[ModelWork], counts: Sequence[int], logits: torch.Tensor) -> None:
        """Hand each work its rows' logits; a work that fails fails alone."""
        offset = 0
        with torch.inference_mode():
            for work, count in zip(works, counts, strict=True):
                try:
                    work.advance(logits[offset : offset + count])
                except Exception as error:  # this work's fault: the others carry on
                    work.error, work.done = error, True
                offset += count

    def warm_up(self) -> None:
        """One forward at batch 1 that must give finite logits of the declared vocabulary."""
        length = min(WARMUP_LENGTH, self.served.context_length)
        row = torch.arange(length, dtype=torch.long) % self.served.vocab_size
        with torch.inference_mode():
            out = self.served.module(row.unsqueeze(0).to(self.device))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model returned {type(out).__name__}, expected a tensor of logits")
        expected = (1, length, self.served.vocab_size)
        if tuple(out.shape) != expected:
            raise ValueError(f"warm-up logits have shape {tuple(out.shape)}, expected {expected}")
        if not bool(torch.isfinite(out).all()):
            raise ValueError("warm-up forward gave non-finite logits")
