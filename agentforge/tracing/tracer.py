"""`traced(graph, exporters)`: the same graph, its runs recorded as span trees by a graph observer
(no change to what the run streams or returns) and handed to the exporters off the hot path (a
background thread, `_export_thread`). A failing exporter costs one warning, never the run."""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from ._export_thread import submit
from .propagation import remote_parent
from .spans import Recorder, Span, to_json

_warned: set[int] = set()


@runtime_checkable
class Exporter(Protocol):
    def export(self, spans: list[Span]) -> None: ...


def export_spans(exporters: Sequence[Exporter], spans: list[Span]) -> None:
    """Hand finished spans to the exporters on the tracing thread (`flush` waits for it)."""
    _export(exporters, lambda: spans)


def _export(exporters: Sequence[Exporter], build: Callable[[], list[Span]]) -> None:
    """Build the spans (`build`), make them JSON and export them, all on the tracing thread."""

    def run() -> None:
        try:
            spans = to_json(build())
        except Exception as exc:  # a run whose spans cannot be built is dropped, with one warning
            warnings.warn(f"a trace could not be built and is dropped: {exc!r}", RuntimeWarning, stacklevel=1)
            return
        for exporter in exporters:
            try:
                exporter.export(spans)
            except Exception as exc:  # tracing never breaks a run: one warning per exporter
                if id(exporter) not in _warned:
                    _warned.add(id(exporter))
                    warnings.warn(f"trace exporter {type(exporter).__name__} failed, its traces are dropped: {exc}",
                                  RuntimeWarning, stacklevel=1)

    submit(run)


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

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("graph", "exporters"):
            object.__setattr__(self, name, value)
        else:  # e.g. a server giving the graph a checkpointer
            setattr(self.graph, name, value)

    def invoke(self, input: Any, config: dict | None = None, **kwargs) -> Any:
        with self._run(input, config) as run:
            run.out = self.graph.invoke(input, run.config, **kwargs)
        return run.out

    async def ainvoke(self, input: Any, config: dict | None = None, **kwargs) -> Any:
        with self._run(input, config) as run:
            run.out = await self.graph.ainvoke(input, run.config, **kwargs)
        return run.out

    def stream(self, input: Any, config: dict | None = None, **kwargs) -> Iterator[Any]:
        with self._run(input, config) as run:
            yield from self.graph.stream(input, run.config, **kwargs)

    async def astream(self, input: Any, config: dict | None = None, **kwargs) -> AsyncIterator[Any]:
        with self._run(input, config) as run:
            async for item in self.graph.astream(input, run.config, **kwargs):
                yield item

    def _run(self, input: Any, config: dict | None) -> _TracedRun:
        return _TracedRun(getattr(self.graph, "name", None) or "graph", self.exporters, input, config)


class _TracedRun:
    """One traced run, as a context: `config` carries the recorder as an observer; on exit the spans
    go to the exporters, with the run's error if it failed (or was closed early) and with `out` as
    its result (what invoke returned; None for a stream)."""

    __slots__ = ("exporters", "recorder", "config", "out")

    def __init__(self, name: str, exporters: list[Exporter], input: Any, config: dict | None) -> None:
        config = dict(config or {})
        # a caller's run id (LangGraph's config["run_id"]; the Agent Protocol's runs) names the trace,
        # unless the run continues a remote caller's trace (`continue_trace`)
        self.recorder = Recorder(name, input, str(config.get("run_id") or "") or None,
                                 parent=remote_parent(config.get("metadata") or {}))
        config["observers"] = [*config.get("observers", ()), self.recorder]
        self.exporters, self.config, self.out = exporters, config, None

    def __enter__(self) -> _TracedRun:
        return self

    def __exit__(self, kind, error: BaseException | None, traceback) -> None:
        end, recorder = time.time(), self.recorder
        if error is None:
            _export(self.exporters, lambda: recorder.finish(self.out, end=end))
        else:
            _export(self.exporters, lambda: recorder.finish(error=error, end=end))


def traced(graph, exporters: Sequence[Exporter]) -> TracedGraph:
    """`graph` with each run recorded and exported to `exporters`."""
    return TracedGraph(graph, exporters)
