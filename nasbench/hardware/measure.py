"""Latency measurement, timm-style: warm up until steady, time enough repetitions,
keep percentiles, and record the conditions with every number.

A :class:`Backend` turns a module and its inputs into a zero-argument runner and times
it: ``torch`` (eager, CPU or CUDA; CUDA timed with events, small batches as CUDA graph
replays, through :mod:`nasbench.hardware.accelerator`) or ``onnxruntime`` (the
module exported to ONNX and run in an InferenceSession). The same backend object
measures table entries and whole networks, so both see identical settings. It reads the
time from a :class:`Clock`, the process's performance counter unless one is injected: tests
drive the real measurement code with a simulated clock whose speed drifts.
"""
from __future__ import annotations

import gc
import io
import os
import platform
import statistics
import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Protocol, Sequence

import torch
from torch import nn

from nasbench.errors import NasbenchError
from nasbench.hardware.accelerator import Accelerator, CudaAccelerator, Runner
from nasbench.numerics import configure_numerics
from nasbench.provenance import cpu_model, device_fingerprint, device_name

BACKENDS = ("torch", "onnxruntime")
ONNX_OPSET = 17


@dataclass(frozen=True)
class MeasureSettings:
    warmup_window: int = 3
    """Calls per warm-up window."""
    warmup_tolerance: float = 0.05
    """Warm-up ends when two consecutive windows' medians differ by less than this share."""
    warmup_max_s: float = 2.0
    rewarm_calls: int = 2
    """Calls before timing in later rounds, once an item has been warmed up until steady."""
    min_reps: int = 5
    min_time_s: float = 0.05
    """Timed repetitions go on until both ``min_reps`` and ``min_time_s`` are reached."""
    rounds: int = 9
    """Every item is measured at least this many times, round-robin over all items, samples pooled."""
    precision: float = 0.02
    """After ``rounds``, rounds go on until the watched figures (whole networks and their part
    sums) are known to this share: the 90th percentile of their 95% confidence half-widths."""
    max_time_s: float = 0.0
    """... or until the next round would end later than this many seconds after the first
    began (0: exactly ``rounds`` rounds)."""
    drift_correction: bool = True
    """Measure a fixed reference workload between the items and state every latency at one
    speed of the machine (:mod:`nasbench.hardware.drift`)."""
    reference_every_s: float = 0.5
    """The reference is measured before the next item once this long has passed since it last was."""
    reference_window_s: float = 2.0
    """An item's speed is the median of the reference's measurements from half this before it to
    half this after it."""
    cuda_graph_max_batch: int = 32
    """On CUDA, batch sizes up to this are timed as CUDA graph replays, parts and whole networks
    alike: there a call's kernels last microseconds and their launches would be most of what is
    timed (and what a deployed network, captured or compiled, does not pay). Above it kernels
    outlast their launches, which the queue hides, and a graph per network would only hold memory."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Keep Python's garbage collector out of timed calls. Collecting on entry costs
    tens of milliseconds with many live networks, so callers that time many items
    pause it once around all of them; nested pauses do not collect again."""
    if not gc.isenabled():
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Clock(Protocol):
    """Where measurement reads the time, in nanoseconds."""

    def now_ns(self) -> int: ...


class PerfCounter:
    def now_ns(self) -> int:
        return time.perf_counter_ns()


class Backend(ABC):
    name: str

    def __init__(self, device: torch.device, threads: int, batch_size: int, settings: MeasureSettings,
                 clock: Clock | None = None):
        self.device, self.threads, self.batch_size, self.settings = device, threads, batch_size, settings
        self.clock = clock or PerfCounter()
        torch.set_num_threads(threads)
        configure_numerics()  # random weights can underflow; denormals are 100x slower
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def inputs(self, shapes: Sequence[tuple[int, ...]], seed: int = 0) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return [torch.randn(shape, generator=generator) for shape in shapes]

    @abstractmethod
    def prepare(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> Runner:
        """A runner computing ``module(*inputs)`` in inference mode on this backend."""

    @abstractmethod
    def harness(self) -> Runner:
        """A runner that does no work through the same call path: its latency is the
        measurement's own overhead, paid once per timed call."""

    def seconds(self) -> float:
        return self.clock.now_ns() / 1e9

    def timer(self) -> str:
        """How each call is timed, as the conditions state it."""
        return "time.perf_counter_ns around each call"

    def time_calls(self, run: Runner, n: int) -> list[float]:
        samples = []
        for _ in range(n):
            start = self.clock.now_ns()
            run()
            samples.append((self.clock.now_ns() - start) / 1e6)
        return samples

    def measure(self, run: Runner, warm: bool = False) -> list[float]:
        """Warm up until steady (only ``rewarm_calls`` calls if ``run`` was warmed up
        before), then time repetitions; milliseconds per call."""
        s = self.settings
        with collector_paused():
            if warm:
                self.time_calls(run, s.rewarm_calls)
            else:
                self._warm_up(run)
            samples, total = [], 0.0
            while len(samples) < s.min_reps or total < s.min_time_s * 1e3:
                batch = self.time_calls(run, max(1, s.min_reps // 2))
                samples += batch
                total += sum(batch)
            return samples

    def _warm_up(self, run: Runner) -> None:
        s = self.settings
        started, previous = self.seconds(), None
        while True:
            median = statistics.median(self.time_calls(run, s.warmup_window))
            steady = previous is not None and abs(median - previous) <= s.warmup_tolerance * previous
            if steady or self.seconds() - started > s.warmup_max_s:
                return
            previous = median

    def conditions(self) -> dict[str, Any]:
        return {
            "device": device_name(self.device),
            "device_fingerprint": device_fingerprint(self.device),
            "device_type": self.device.type,
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "threads": self.threads,
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
            "backend": self.name,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "dtype": "float32",
            "batch_size": self.batch_size,
            "memory_format": "contiguous (NCHW)",
            "flush_denormal": self.device.type == "cpu",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "measurement": asdict(self.settings) | {
                "timer": self.timer(), "gc": "collected before, disabled during each round",
                "warm_up": "until steady on an item's first round, rewarm_calls calls in later rounds",
                "statistic": "percentiles of the samples pooled over rounds, each divided by the machine's speed "
                             "at its moment where drift_correction is on (the table's `reference_speed`)"},
        }


class TorchBackend(Backend):
    """torch in inference mode. With an accelerator (CUDA's, unless one is injected) calls are
    timed by its events and, at batch sizes up to ``cuda_graph_max_batch``, every runner, the
    harness too, is the replay of a graph captured once at preparation; one that cannot be
    captured runs eagerly, and the conditions list it (``cuda_graph_fallbacks``)."""

    name = "torch"

    def __init__(self, device: torch.device, threads: int, batch_size: int, settings: MeasureSettings,
                 clock: Clock | None = None, accelerator: Accelerator | None = None):
        super().__init__(device, threads, batch_size, settings, clock)
        if accelerator is None and device.type == "cuda":
            accelerator = CudaAccelerator(device)
        self.accelerator = accelerator
        self.graphs = self.accelerator is not None and batch_size <= settings.cuda_graph_max_batch
        self.graph_fallbacks: list[dict[str, str]] = []

    def prepare(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> Runner:
        module = module.to(self.device).eval()
        xs = [x.to(self.device) for x in inputs]

        def run() -> object:
            with torch.inference_mode():
                return module(*xs)

        return self._runner(run, f"{type(module).__name__} on {[tuple(x.shape) for x in xs]}")

    def harness(self) -> Runner:
        def run() -> None:
            with torch.inference_mode():
                return None

        return self._runner(run, "harness")

    def _runner(self, run: Runner, what: str) -> Runner:
        """``run``, or with graphs on, its graph's replay: the same path for parts, networks and
        the harness, so a network and its parts' sum are timed alike."""
        if not self.graphs:
            return run
        try:
            return self.accelerator.capture(run)
        except RuntimeError as error:  # e.g. an op that waits for the host, which capture forbids
            reason = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
            self.graph_fallbacks.append({"module": what, "error": reason})
            warnings.warn(f"{what} cannot be captured as a CUDA graph and is timed eagerly ({reason})", stacklevel=2)
            return run

    def time_calls(self, run: Runner, n: int) -> list[float]:
        if self.accelerator is None:
            return super().time_calls(run, n)
        device = self.accelerator
        device.synchronize()
        samples = []
        for _ in range(n):
            start, end = device.event(), device.event()
            start.record()
            run()
            end.record()
            device.synchronize()
            samples.append(start.elapsed_ms(end))
        return samples

    def timer(self) -> str:
        if self.accelerator is None:
            return super().timer()
        graphs = (f"batch {self.batch_size} <= cuda_graph_max_batch {self.settings.cuda_graph_max_batch}: each call a "
                  "CUDA graph replay" if self.graphs else
                  f"batch {self.batch_size} > cuda_graph_max_batch {self.settings.cuda_graph_max_batch}: eager calls")
        return f"{self.accelerator.timer}; {graphs}"

    def conditions(self) -> dict[str, Any]:
        conditions = super().conditions() | {
            "backend_version": torch.__version__,
            "torch_interop_threads": torch.get_num_interop_threads(),
            "mkldnn_enabled": torch.backends.mkldnn.enabled,
        }
        if self.accelerator is not None:
            conditions |= self.accelerator.conditions() | {
                "timer": self.accelerator.timer, "cuda_graphs": self.graphs,
                "cuda_graph_fallbacks": list(self.graph_fallbacks)}
        return conditions


class OnnxRuntimeBackend(Backend):
    """Each module exported to ONNX (opset 17, TorchScript exporter) and run in its own
    InferenceSession with full graph optimisation, ``threads`` intra-op threads and
    sequential execution: the same settings for table entries and whole networks. On CUDA
    (onnxruntime-gpu's CUDAExecutionProvider) ``session.run`` takes and returns host arrays
    and returns once the outputs are copied back, so the host clock around it times the
    device's work with the copies of the inputs and outputs (the harness, a one-node graph on
    one number, pays only a copy's fixed cost)."""

    name = "onnxruntime"

    def __init__(self, device: torch.device, threads: int, batch_size: int, settings: MeasureSettings,
                 clock: Clock | None = None):
        import onnxruntime as ort

        provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise NasbenchError(f"onnxruntime {ort.__version__} here has no {provider} (it has "
                                f"{', '.join(ort.get_available_providers())}): for --device cuda, `pip uninstall "
                                "onnxruntime && pip install onnxruntime-gpu`, or use --backend torch")
        super().__init__(device, threads, batch_size, settings, clock)
        self.ort, self.provider = ort, provider

    def _session(self, module: nn.Module, inputs: Sequence[torch.Tensor]):
        model = onnx_bytes(module, inputs, [f"x{i}" for i in range(len(inputs))], "y")
        options = self.ort.SessionOptions()
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = self.ort.InferenceSession(model, options, providers=[self.provider])
        feeds = {node.name: x.numpy() for node, x in zip(session.get_inputs(), inputs)}
        return session, feeds

    def prepare(self, module: nn.Module, inputs: Sequence[torch.Tensor]) -> Runner:
        session, feeds = self._session(module, [x.cpu() for x in inputs])
        return lambda: session.run(None, feeds)

    def harness(self) -> Runner:
        return self.prepare(_Passthrough(), [torch.zeros(1, 1)])

    def timer(self) -> str:
        return "time.perf_counter_ns around each session.run, which returns once its outputs are on the host"

    def conditions(self) -> dict[str, Any]:
        return super().conditions() | {
            "backend_version": self.ort.__version__,
            "onnx_opset": ONNX_OPSET,
            "exporter": "torch.onnx.export(dynamo=False)",
            "provider": self.provider,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "intra_op_threads": self.threads,
            "inter_op_threads": 1,
            "execution_mode": "ORT_SEQUENTIAL",
        }


def onnx_bytes(module: nn.Module, inputs: Sequence[torch.Tensor], input_names: Sequence[str], output_name: str,
               dynamic_axes: dict[str, dict[int, str]] | None = None) -> bytes:
    """``module`` in eval mode as an ONNX model (opset :data:`ONNX_OPSET`, TorchScript exporter,
    constant folding): one place for the settings that latencies are measured under and that
    ``nasbench export`` writes networks with, so an exported network is the one measured."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), tuple(inputs), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=list(input_names), output_names=[output_name], dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    return buffer.getvalue()


class _Passthrough(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0  # ONNX needs at least one node


def make_backend(name: str, device: torch.device, threads: int, batch_size: int, settings: MeasureSettings) -> Backend:
    if name == "torch":
        return TorchBackend(device, threads, batch_size, settings)
    if name == "onnxruntime":
        return OnnxRuntimeBackend(device, threads, batch_size, settings)
    raise NasbenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
