"""Streamed chat generation: `bigmodel.serving` against `transformers serve` and raw generate.

Builds one random-weight Llama with `build_tiny_lm` (a few million parameters by default),
then, for 1 and `--streams` concurrent streams, each asking for `--tokens` tokens (greedy)
with the same chat prompts:

- `bigmodel.serving` (`python -m bigmodel.serving --model-uri DIR`, KV cache, continuous
  batching), streamed chat completions;
- the peer, `transformers serve DIR --continuous-batching` (needs `transformers[serving]`;
  skipped with the reason printed when it cannot start), the same requests;
- the raw limit: one batched `model.generate` of the same prompts in this process.

Output tokens/s is the tokens generated (usage) over the wall time from the first request
to the last stream's end; TTFT is the time from sending a request to its first content chunk
(p50 and p99 over `--rounds` rounds of all streams). Tokens per CPU second divides the same
tokens by the CPU time (user + system, all threads) the server process used meanwhile (for
`generate`, this process's): on a shared machine, where wall time depends on what else
runs, it is the figure that compares the systems' own cost. Servers and the script use one torch
thread each (`--torch-threads`), started one at a time, so they never compete. With
`--repeats N` every system runs N times, interleaved, each repeat in an order rotated by
one (a loaded machine then disturbs each alike), and medians are reported;
`--baseline-operator DIR` adds the server from another checkout (e.g. the commit before a
change) to the interleaving.

    python benchmarks/llm_serving.py            # CPU; see benchmarks/README.md for figures
    python benchmarks/llm_serving.py --device cuda --dtype bfloat16 \
        --hidden-size 2048 --layers 16 --heads 32   # a ~1B model on a GPU
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import aiohttp
import torch

from bigmodel.serving.tiny_lm import build_tiny_lm

OPERATOR = Path(__file__).resolve().parents[1] / "operator"
QUESTIONS = (
    "How does continuous batching work?",
    "What is the time to first token?",
    "Why does a node become a straggler?",
    "Explain the key and value cache.",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128, help="output tokens per stream")
    parser.add_argument("--streams", type=int, default=16, help="the concurrent load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--startup-seconds", type=float, default=240)
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where all three run the model"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="the model's weights and compute dtype in all three",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every system this many times, interleaved; medians reported",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip `transformers serve`")
    parser.add_argument(
        "--baseline-operator",
        type=Path,
        default=None,
        help="also serve from another checkout's operator/ directory (e.g. "
        "the commit before a change), interleaved with this one",
    )
    return parser.parse_args(argv)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server process answering OpenAI chat completions at `url`."""

    def __init__(
        self, name: str, model: str, command: list[str], port: int, operator: Path = OPERATOR
    ) -> None:
        self.name, self.model, self.port = name, model, port
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(operator), "HF_HUB_OFFLINE": "1",
               "OMP_NUM_THREADS": "1"}  # fmt: skip
        handle, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        self.log = path
        self.process = subprocess.Popen(command, env=env, stdout=handle, stderr=handle)
        os.close(handle)

    async def wait_ready(self, session: aiohttp.ClientSession, path: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}: {self.log}")
            try:
                async with session.get(self.url + path) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready in {limit} s: {self.log}")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server and its live child processes have used so far
        (`transformers serve` runs its model in a child process)."""
        return sum(_cpu_ticks(pid) for pid in _tree(self.process.pid)) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (the 3rd field first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12])  # utime, stime


def _tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):  # it ended meanwhile
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


async def stream(
    session: aiohttp.ClientSession, server: Server, question: str, tokens: int
) -> tuple[float, int]:
    """One streamed chat: (seconds to the first content chunk, output tokens)."""
    body = {"model": server.model, "messages": [{"role": "user", "content": question}],
            "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    sent = time.perf_counter()
    first: float | None = None
    output, chunks = 0, 0
    async with session.post(server.url + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.content:
            text = line.decode().strip()
            if not text.startswith("data: ") or text == "data: [DONE]":
                continue
            chunk = json.loads(text[6:])
            if chunk.get("usage"):
                output = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter() - sent
    return (first if first is not None else time.perf_counter() - sent), output or chunks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def serve_load(server: Server, streams: int, args: argparse.Namespace) -> dict[str, float]:
    ttfts: list[float] = []
    tokens, seconds = 0, 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session:
        await stream(session, server, QUESTIONS[0], 4)  # warm-up
        cpu = server.cpu_seconds()
        for _ in range(args.rounds):
            started = time.perf_counter()
            results = await asyncio.gather(*(
                stream(session, server, QUESTIONS[i % len(QUESTIONS)], args.tokens)
                for i in range(streams)
            ))  # fmt: skip
            seconds += time.perf_counter() - started
            ttfts += [ttft for ttft, _ in results]
            tokens += sum(count for _, count in results)
        cpu = server.cpu_seconds() - cpu
    return {"tokens_per_s": tokens / seconds, "ttft_p50_ms": 1000 * statistics.median(ttfts),
            "ttft_p99_ms": 1000 * percentile(ttfts, 0.99), "tokens": tokens,
            "tokens_per_cpu_s": tokens / cpu}  # fmt: skip


def raw_generate(directory: Path, streams: int, args: argparse.Namespace) -> dict[str, float]:
    """Batched greedy `model.generate` of the same chat prompts (left-padded): the raw limit."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, args.dtype))
    model = model.to(args.device).eval()
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": QUESTIONS[i % 4]}],
                                      tokenize=False, add_generation_prompt=True)
        for i in range(streams)
    ]  # fmt: skip
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = batch.to(args.device)
    tokens, seconds, cpu = 0, 0.0, 0.0
    for _ in range(args.rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=args.tokens, do_sample=False)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        new = out[:, batch["input_ids"].shape[1] :]
        tokens += int((new != tokenizer.pad_token_id).sum())
    return {"tokens_per_s": tokens / seconds, "tokens": tokens, "tokens_per_cpu_s": tokens / cpu}


def ratios(ours: dict[str, float], other: dict[str, float]) -> str:
    """Tokens/s and tokens per CPU second of `ours` over `other`'s."""
    wall = ours["tokens_per_s"] / other["tokens_per_s"]
    cpu = ours["tokens_per_cpu_s"] / other["tokens_per_cpu_s"]
    return f"{wall:.2f} in tokens/s, {cpu:.2f} in tokens per CPU second"


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the repeats."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


async def measure(
    session: aiohttp.ClientSession,
    name: str,
    model: str,
    command: list[str],
    health: str,
    args: argparse.Namespace,
    operator: Path,
) -> dict[str, Any]:
    """One server started, loaded with 1 and `--streams` streams, stopped."""
    port = free_port()
    server = Server(name, model, [*command, str(port)], port, operator)
    figures: dict[str, Any] = {}
    try:
        await server.wait_ready(session, health, args.startup_seconds)
        for streams in (1, args.streams):
            figures[f"x{streams}"] = await serve_load(server, streams, args)
            print(name, streams, figures[f"x{streams}"], flush=True)
    except Exception as error:  # a peer that cannot run is reported, not fatal
        figures["error"] = f"{type(error).__name__}: {error}"
    finally:
        server.stop()
    return figures


async def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.torch_threads)
    workdir = Path(tempfile.mkdtemp(prefix="llm-bench-"))
    directory = build_tiny_lm(
        workdir / "model",
        hidden_size=args.hidden_size,
        layers=args.layers,
        heads=args.heads,
        context_length=1024,
    )
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(directory)
    from safetensors.torch import load_file

    params = sum(t.numel() for t in load_file(str(directory / "model.safetensors")).values())
    results: dict[str, Any] = {
        "model": {
            "params": params,
            "hidden": config.hidden_size,
            "layers": args.layers,
            "device": args.device,
            "dtype": args.dtype,
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    directory_text = str(directory)
    ours = [
        sys.executable, "-m", "bigmodel.serving", "--model-name", "bench", "--model-uri",
        directory_text, "--device", args.device, "--dtype", args.dtype,
        "--torch-threads", str(args.torch_threads),
        "--max-batch-size", str(max(args.streams, 1)), "--termination-message-path", "",
        "--log-level", "WARNING", "--port",
    ]  # fmt: skip
    runs = [("bigmodel", "bench", ours, "/v2/health/ready", OPERATOR)]
    if args.baseline_operator is not None:
        runs.append(("bigmodel-baseline", "bench", ours, "/v2/health/ready",
                     args.baseline_operator.resolve()))  # fmt: skip
    peer = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if args.no_peer:
        results["peer_skipped"] = "--no-peer"
    elif peer is None:
        results["peer_skipped"] = "no `transformers` command: pip install 'transformers[serving]'"
    else:
        runs.append(("transformers-serve", directory_text, [
            peer, "serve", directory_text, "--continuous-batching", "--device", args.device,
            "--dtype", args.dtype, "--host", "127.0.0.1", "--log-level", "warning", "--port",
        ], "/health", OPERATOR))  # fmt: skip
    collected: dict[str, list[dict[str, float]]] = {}
    systems: list[tuple[str, str, list[str], str, Path] | None] = [*runs, None]  # None: raw
    async with aiohttp.ClientSession() as session:
        for repeat in range(args.repeats):  # one server at a time; each repeat starts later
            shift = repeat % len(systems)  # in the order, so no system always runs last
            for system in systems[shift:] + systems[:shift]:
                if system is None:
                    for streams in (1, args.streams):
                        raw = raw_generate(directory, streams, args)
                        collected.setdefault(f"raw generate x{streams}", []).append(raw)
                    continue
                name, model, command, health, operator = system
                figures = await measure(session, name, model, command, health, args, operator)
                if "error" in figures:
                    results[f"{name} error"] = figures["error"]
                    continue
                for load, values in figures.items():
                    collected.setdefault(f"{name} {load}", []).append(values)
    results["machine"]["load_after"] = os.getloadavg()
    results["runs"] = collected
    for key, values in collected.items():
        results[key] = summary(values)
    print(json.dumps(results, indent=2))
    raw16 = results[f"raw generate x{args.streams}"]
    for name in ("bigmodel", "bigmodel-baseline"):
        ours16 = results.get(f"{name} x{args.streams}")
        if ours16:
            print(f"{name} / raw generate at {args.streams} streams: {ratios(ours16, raw16)} "
                  "(goal >= 0.8)")  # fmt: skip
        peer16 = results.get(f"transformers-serve x{args.streams}")
        if ours16 and peer16:
            print(f"{name} / transformers serve at {args.streams} streams: "
                  f"{ratios(ours16, peer16)} (goal >= 1.5); TTFT "
                  f"p99 {ours16['ttft_p99_ms']:.0f} vs {peer16['ttft_p99_ms']:.0f} ms")  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
