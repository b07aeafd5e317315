"""`traced(graph, exporters)`: the same graph, its runs recorded as span trees and handed to the
exporters off the hot path (a background thread). A failing exporter costs one warning, never
the run."""

from __future__ import annotations

import concurrent.futures
import threading
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from .spans import Recorder, Span

_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentforge-tracing")
_pending: set[concurrent.futures.Future] = set()
_warned: set[int] = set()
_lock = threading.Lock()


@runtime_checkable
class Exporter(Protocol):
    def export(self, spans: list[Span]) -> None: ...


def flush(timeout: float | None = 30.0) -> None:
    """Wait until every finished run has been exported."""
    with _lock:
        pending = list(_pending)
    concurrent.futures.wait(pending, timeout=timeout)


def _export(exporters: Sequence[Exporter], spans: list[Span]) -> None:
    def run() -> None:
        for exporter in exporters:
            try:
                exporter.export(spans)
            except Exception as exc:  # tracing never breaks a run: one warning per exporter
                if id(exporter) not in _warned:
                    _warned.add(id(exporter))
                    warnings.warn(f"trace exporter {type(exporter).__name__} failed, its traces are dropped: {exc}",
                                  RuntimeWarning, stacklevel=1)

    future = _POOL.submit(run)
    with _lock:
        _pending.add(future)
    future.add_done_callback(lambda f: _pending.discard(f))


class TracedGraph:
    """A compiled graph whose `invoke`/`ainvoke`/`stream`/`astream` runs are traced; anything else
    (`get_state`, `name`, ...) is the graph's own."""

    def __init__(self, graph, exporters: Sequence[Exporter]) -> None:
        if not getattr(graph, "_is_compiled_graph", False):
            raise ValueError("traced() takes a compiled graph")
        if not exporters or not all(isinstance(e, Exporter) for e in exporters):
            raise ValueError("give at least one exporter (an object with .export(spans))")
        self.graph, self.exporters = graph, list(exporters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.graph, name)

    def stream(self, input: Any, config: dict | None = None, *, stream_mode: str | Sequence[str] = "updates",
               subgraphs: bool = False, **kwargs) -> Iterator[Any]:
        recorder, modes = self._start(input), _modes(stream_mode)
        outputs = None
        try:
            for item in self.graph.stream(input, config, stream_mode=_with_ours(modes), subgraphs=True, **kwargs):
                outputs = self._observe(recorder, item, outputs)
                shown = _shape(item, stream_mode, modes, subgraphs)
                if shown is not _SKIP:
                    yield shown
        except BaseException as exc:
            _export(self.exporters, recorder.finish(outputs, exc))
            raise
        _export(self.exporters, recorder.finish(outputs))

    async def astream(self, input: Any, config: dict | None = None, *, stream_mode: str | Sequence[str] = "updates",
                      subgraphs: bool = False, **kwargs) -> AsyncIterator[Any]:
        recorder, modes = self._start(input), _modes(stream_mode)
        outputs = None
        try:
            async for item in self.graph.astream(input, config, stream_mode=_with_ours(modes),
                                                 subgraphs=True, **kwargs):
                outputs = self._observe(recorder, item, outputs)
                shown = _shape(item, stream_mode, modes, subgraphs)
                if shown is not _SKIP:
                    yield shown
        except BaseException as exc:
            _export(self.exporters, recorder.finish(outputs, exc))
            raise
        _export(self.exporters, recorder.finish(outputs))

    def invoke(self, input: Any, config: dict | None = None, **kwargs) -> Any:
        latest = None
        for chunk in self.stream(input, config, stream_mode="values", **kwargs):
            latest = chunk
        return _final(latest)

    async def ainvoke(self, input: Any, config: dict | None = None, **kwargs) -> Any:
        latest = None
        async for chunk in self.astream(input, config, stream_mode="values", **kwargs):
            latest = chunk
        return _final(latest)

    def _start(self, input: Any) -> Recorder:
        return Recorder(getattr(self.graph, "name", None) or "graph", input)

    @staticmethod
    def _observe(recorder: Recorder, item: tuple, outputs: Any) -> Any:
        namespace, mode, payload = item
        recorder.feed(namespace, mode, payload)
        return payload if mode == "values" and not namespace else outputs


_SKIP = object()


def _final(latest: Any) -> Any:
    """As `invoke` returns it: the last state, `__interrupt__` as a list when the run paused."""
    if isinstance(latest, dict) and "__interrupt__" in latest:
        return {**latest, "__interrupt__": list(latest["__interrupt__"])}
    return latest


def _with_ours(modes: list[str]) -> list[str]:
    return list(dict.fromkeys([*modes, "debug", "messages", "values"]))


def _modes(stream_mode: str | Sequence[str]) -> list[str]:
    return [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)


def _shape(item: tuple, stream_mode, modes: list[str], subgraphs: bool):
    """The item as the caller's own `stream_mode` and `subgraphs` would have given it."""
    namespace, mode, payload = item
    if mode not in modes or (namespace and not subgraphs):
        return _SKIP
    shown = payload if isinstance(stream_mode, str) else (mode, payload)
    return (namespace, shown) if subgraphs else shown


def traced(graph, exporters: Sequence[Exporter]) -> TracedGraph:
    """`graph` with each run recorded and exported to `exporters`."""
    return TracedGraph(graph, exporters)
