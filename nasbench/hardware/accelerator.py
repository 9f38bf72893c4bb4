"""Timing on an accelerator, behind one small interface: device events, a synchronize, and
graph capture.

A CUDA kernel runs after its call returns, so a host clock around the call times its launch,
not its work: :class:`~nasbench.hardware.measure.TorchBackend` on CUDA reads events recorded on
the device's stream around each call instead, and at small batches times the replay of a CUDA
graph captured from the call, since there launch overhead is the whole story (a batch-1 part
launches a few kernels of a few microseconds each). Everything the backend does with the device
goes through an :class:`Accelerator`, so that a test drives the same code path on a CPU with a
fake one whose events read a simulated clock.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Protocol

import torch

Runner = Callable[[], object]
GRAPH_WARMUP_CALLS = 3
"""Eager calls on a side stream before capture (PyTorch's advice): cuDNN's algorithm search,
workspace and allocator growth happen there, never inside the captured graph."""


class Event(Protocol):
    """A mark on the device's timeline."""

    def record(self) -> None: ...

    def elapsed_ms(self, end: "Event") -> float:
        """Milliseconds from this event to ``end`` (both recorded and completed)."""
        ...


class Accelerator(Protocol):
    """What timing on a device needs from it."""

    timer: str
    """How a call is timed, as a table's conditions state it."""

    def synchronize(self) -> None:
        """Wait until all work queued on the device is done."""
        ...

    def event(self) -> Event: ...

    def capture(self, run: Runner) -> Runner:
        """A runner that replays ``run``'s device work as one graph, on the tensors ``run``
        uses (kept alive by the runner); raises where ``run`` cannot be captured."""
        ...

    def conditions(self) -> dict[str, Any]:
        """The device's software, for a table's conditions."""
        ...


class CudaEvent:
    def __init__(self) -> None:
        self.event = torch.cuda.Event(enable_timing=True)

    def record(self) -> None:
        self.event.record()

    def elapsed_ms(self, end: "CudaEvent") -> float:
        return self.event.elapsed_time(end.event)


class GraphReplay:
    """A captured graph as a runner. It holds ``run`` too: the graph reads the inputs and
    weights in ``run``'s closure at fixed addresses, which must outlive it."""

    def __init__(self, graph: "torch.cuda.CUDAGraph", run: Runner, output: object):
        self.graph, self.run, self.output = graph, run, output

    def __call__(self) -> object:
        self.graph.replay()
        return self.output


class CudaAccelerator:
    """A CUDA device through torch.cuda: timing events on the current stream, and graphs
    captured with ``torch.cuda.graph`` (each with its own memory pool: graphs replay in any
    order, so none may reuse another's memory)."""

    timer = "CUDA events around each call (torch.cuda.Event, enable_timing), one synchronize per call"

    def __init__(self, device: torch.device):
        self.device = device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def event(self) -> CudaEvent:
        return CudaEvent()

    def capture(self, run: Runner) -> Runner:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_CALLS):
                run()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The CUDA Graph is empty")  # the harness launches nothing
            with torch.cuda.graph(graph):
                output = run()
        return GraphReplay(graph, run, output)

    def conditions(self) -> dict[str, Any]:
        return {"cuda_version": torch.version.cuda, "cudnn_version": torch.backends.cudnn.version(),
                "cudnn_benchmark": torch.backends.cudnn.benchmark}
