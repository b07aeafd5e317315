"""`traced(graph, exporters)`: the same graph, its runs recorded as span trees by a graph observer
(no change to what the run streams or returns) and handed to the exporters off the hot path (a
background thread, `_export_thread`). A failing exporter costs one warning, never the run."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import SimpleNamespace
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

    @contextlib.contextmanager
    def _run(self, input: Any, config: dict | None) -> Iterator[SimpleNamespace]:
        """One traced run: `run.config` carries the recorder as an observer; the spans go to the
        exporters when the run ends, with its error if it failed (or was closed early) and with
        `run.out` as its result (what invoke returned; None for a stream)."""
        config = dict(config or {})
        # a caller's run id (LangGraph's config["run_id"]; the Agent Protocol's runs) names the trace,
        # unless the run continues a remote caller's trace (`continue_trace`)
        recorder = Recorder(getattr(self.graph, "name", None) or "graph", input, str(config.get("run_id") or "") or None,
                            parent=remote_parent(config.get("metadata") or {}))
        config["observers"] = [*config.get("observers", ()), recorder]
        run = SimpleNamespace(config=config, out=None)
        try:
            yield run
        except BaseException as exc:
            end = time.time()
            _export(self.exporters, lambda error=exc: recorder.finish(error=error, end=end))
            raise
        end = time.time()
        _export(self.exporters, lambda: recorder.finish(run.out, end=end))


def traced(graph, exporters: Sequence[Exporter]) -> TracedGraph:
    """`graph` with each run recorded and exported to `exporters`."""
    return TracedGraph(graph, exporters)
