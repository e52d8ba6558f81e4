"""Example trainer: a tiny transformer LM under DDP, timed, checkpointed and resumable.

    torchrun --nnodes=2 --nproc-per-node=2 ... -m bigmodel.runtime.example_trainer --steps 60

Runs offline on a synthetic corpus (gloo on CPU, nccl on CUDA). Global rank 0 logs one JSON
line per `--log-every` steps and writes atomic checkpoints; a restarted run resumes from the
latest one (every node must see `--checkpoint-dir`). A checkpoint also holds the model's
sizes (`config`) and character `vocabulary`, so `bigmodel.serving` can serve it as it is;
it loads with `torch.load(weights_only=True)`. The step time it reports (T_i) is this
rank's data + forward + backward up to the gradient all-reduce, not the wait for the other
ranks (`stop_at_gradient_sync`), so a slow node stands out. A deliberate straggler for
telemetry tests: `BIGMODEL_SLOWDOWN_SECONDS` sleeps inside each step (in its compute part,
so a straggler's cause is Unknown), on node `BIGMODEL_SLOWDOWN_NODE_RANK` only (default:
every node), for steps before `BIGMODEL_SLOWDOWN_UNTIL_STEP` only (default: all); with
`BIGMODEL_SLOWDOWN_MACHINE`, only on that Kubernetes node (the pod's `BIGMODEL_NODE_NAME`,
e.g. from the downward API's `spec.nodeName`): a slow machine rather than a slow rank,
which moving the pod cures. It marks the parts of each step for the operator to name a
straggler's cause (input wait, compute, exposed communication), and `--inject`
(repeatable) adds one cause on purpose: `input-wait:RANK:SECONDS`, `compute:RANK:FACTOR`,
`communication:SECONDS:FROM_STEP` (`bigmodel.runtime.inject`).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bigmodel.runtime.environment import read_environment
from bigmodel.runtime.inject import Injection, parse_injection
from bigmodel.runtime.model import CharCorpus, TinyLM, lm_loss, synthetic_corpus
from bigmodel.runtime.timer import step_timer, stop_at_gradient_sync
from bigmodel.runtime.trainer_io import log, non_negative, positive, positive_float

CHECKPOINTS_KEPT = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the options; a bad one exits with status 2 and names it."""
    parser = argparse.ArgumentParser(prog="bigmodel.runtime.example_trainer", description=__doc__)
    parser.add_argument("--steps", type=positive, default=60, help="total steps (default 60)")
    parser.add_argument("--batch-size", type=positive, default=16, help="per process")
    parser.add_argument("--seq-len", type=positive, default=64, help="tokens per sample")
    parser.add_argument("--d-model", type=positive, default=64, help="model width")
    parser.add_argument("--layers", type=positive, default=2, help="transformer blocks")
    parser.add_argument("--heads", type=positive, default=4, help="attention heads")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="AdamW learning rate")
    parser.add_argument("--log-every", type=positive, default=10, help="steps per log line")
    parser.add_argument("--checkpoint-dir", type=Path, help="where rank 0 saves and resumes")
    parser.add_argument(
        "--checkpoint-every", type=non_negative, default=20, help="steps (0: only at the end)"
    )
    parser.add_argument(
        "--inject",
        type=_injection,
        action="append",
        default=[],
        metavar="CAUSE",
        help="slow on purpose: input-wait:RANK:SECONDS, compute:RANK:FACTOR or "
        "communication:SECONDS:FROM_STEP (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.d_model % args.heads:
        parser.error(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
    return args


def _injection(text: str) -> Injection:
    try:
        return parse_injection(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


@dataclass(frozen=True)
class Slowdown:
    """A deliberate straggler: sleep `seconds` per step on one node, up to a step."""

    seconds: float = 0.0
    node_rank: int | None = None
    until_step: int | None = None

    def applies(self, node_rank: int, step: int) -> bool:
        """Whether the step `step` (0-based) of node `node_rank` is slowed down."""
        return (
            self.seconds > 0
            and self.node_rank in (None, node_rank)
            and (self.until_step is None or step < self.until_step)
        )


MACHINE_ENV = "BIGMODEL_NODE_NAME"
"""The Kubernetes node the pod runs on (set it from the downward API's `spec.nodeName`)."""


def read_slowdown(env: Mapping[str, str]) -> Slowdown:
    """Parse the BIGMODEL_SLOWDOWN_* variables; a bad value raises ValueError naming it. A
    slowdown of another machine than this pod's (`BIGMODEL_SLOWDOWN_MACHINE` against
    `BIGMODEL_NODE_NAME`) is none."""

    def number(name: str, kind: type[float] | type[int]) -> Any:
        raw = env.get(name, "")
        try:
            value = kind(raw) if raw else None
        except ValueError:
            raise ValueError(f"{name}={raw!r}: expected a {kind.__name__}") from None
        if value is not None and value < 0:
            raise ValueError(f"{name}={raw!r}: must be >= 0")
        return value

    machine = env.get("BIGMODEL_SLOWDOWN_MACHINE", "")
    if machine and not env.get(MACHINE_ENV):
        raise ValueError(f"BIGMODEL_SLOWDOWN_MACHINE={machine!r}: {MACHINE_ENV} is not set")
    seconds = number("BIGMODEL_SLOWDOWN_SECONDS", float) or 0.0
    elsewhere = bool(machine) and env[MACHINE_ENV] != machine
    return Slowdown(
        seconds=0.0 if elsewhere else seconds,
        node_rank=number("BIGMODEL_SLOWDOWN_NODE_RANK", int),
        until_step=number("BIGMODEL_SLOWDOWN_UNTIL_STEP", int),
    )


def checkpoint_path(directory: Path, step: int) -> Path:
    """Where the checkpoint of `step` lives."""
    return directory / f"step-{step:09d}.pt"


def _step_of(path: Path) -> int:
    return int(path.stem.removeprefix("step-"))


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint of the highest step in `directory`, if any."""
    return max(directory.glob("step-*.pt"), default=None)


def save_checkpoint(directory: Path, step: int, state: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename), then keep only the latest few."""
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, step)
    temp = directory / f".{path.name}.tmp"
    torch.save(state, temp)
    temp.replace(path)
    for old in sorted(directory.glob("step-*.pt"))[:-CHECKPOINTS_KEPT]:
        old.unlink()
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def init_distributed() -> torch.device:
    """Join the process group from torchrun's environment (or alone, without torchrun)."""
    if "RANK" not in os.environ:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def load_resume_state(checkpoint_dir: Path | None, device: torch.device) -> dict[str, Any] | None:
    """The latest checkpoint, as chosen by global rank 0 and read by every rank.

    Every node must see `--checkpoint-dir` (shared storage, as usual on Kubernetes): a rank
    that cannot see rank 0's choice stops with a message instead of training apart.
    """
    latest = latest_checkpoint(checkpoint_dir) if checkpoint_dir and dist.get_rank() == 0 else None
    chosen = torch.tensor([_step_of(latest) if latest else -1], device=device)
    dist.broadcast(chosen, src=0)
    step = int(chosen.item())
    if step < 0 or checkpoint_dir is None:
        return None
    path = checkpoint_path(checkpoint_dir, step)
    if not path.exists():
        raise SystemExit(f"example_trainer: {path} not found: --checkpoint-dir must be shared")
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if dist.get_rank() == 0:
        log(f"resumed from step {step}", step=step, checkpoint=str(path))
    return state


def train(args: argparse.Namespace, slowdown: Slowdown) -> None:
    """Train until `args.steps`, from the latest checkpoint when there is one."""
    device = init_distributed()
    rank, world = dist.get_rank(), dist.get_world_size()
    node_rank = int(os.environ.get("GROUP_RANK", "0"))
    corpus = CharCorpus(synthetic_corpus())
    torch.manual_seed(0)
    net = TinyLM(len(corpus.vocab), args.d_model, args.layers, args.heads, args.seq_len)
    net.to(device)  # before the optimizer loads its state: the state follows the parameters
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr)
    state = load_resume_state(args.checkpoint_dir, device)
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    model = DistributedDataParallel(net, broadcast_buffers=False)
    timer = step_timer(device)
    injected: list[Injection] = args.inject
    first = state["step"] if state else 0
    current = [first]
    stop_at_gradient_sync(
        model, timer, lambda: sum(i.communication_delay(current[0]) for i in injected)
    )
    input_wait = sum(i.input_wait(rank) for i in injected)
    extra_forwards = sum(i.extra_forwards(rank) for i in injected)
    for step in range(first, args.steps):
        current[0] = step
        timer.start()  # stopped by the DDP hook when this rank's backward is done
        time.sleep(input_wait)
        inputs, targets = (
            t.to(device) for t in corpus.batch(args.batch_size, args.seq_len, step * world + rank)
        )
        timer.input_ready()
        if slowdown.applies(node_rank, step):
            time.sleep(slowdown.seconds)  # a slow node or machine: part of the step's compute
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            with torch.no_grad():
                for _ in range(extra_forwards):
                    net(inputs)
            loss = lm_loss(model(inputs), targets)
        loss.backward()  # type: ignore[no-untyped-call]
        timer.communication_done()  # backward returns once the gradients are all-reduced
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done == 1 or done % args.log_every == 0 or done == args.steps:
            timer.set_loss(loss.item())  # the only host sync, once per log interval
            if rank == 0:
                log("step", step=done, loss=round(loss.item(), 4), step_seconds=timer.stats.last)
        every = args.checkpoint_every or args.steps
        if args.checkpoint_dir and rank == 0 and (done % every == 0 or done == args.steps):
            state_now = {
                "step": done,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                # What a server needs to rebuild the model without this script.
                "config": net.config.as_dict(),
                "vocabulary": list(corpus.vocab),
            }
            save_checkpoint(args.checkpoint_dir, done, state_now)
    # Leave in an order that cannot race: a final barrier, so that no rank tears its gloo
    # connections down while a peer still works (rank 0 writing the last checkpoint), then
    # the DDP model (whose reducer holds the group and the Python comm hook) is released
    # before the group is destroyed, as PyTorch's shutdown guidance asks.
    dist.barrier()
    timer.close()
    del model, net, optimizer
    gc.collect()
    dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, check the environment, train."""
    args = parse_args(argv)
    try:
        read_environment(os.environ)
        slowdown = read_slowdown(os.environ)
    except ValueError as error:
        print(f"example_trainer: {error}", file=sys.stderr)
        return 2
    train(args, slowdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
