"""`AsyncLLM`: the engine stepping in a background thread, each request an async stream of deltas.

Requests are validated and tokenized on the caller's side (errors raise right there), then handed
to the engine thread through a queue; every step's outputs go back to the asyncio queue of their
request. Leaving the `async for` early (break, cancellation, a closed client) aborts the request and
frees its KV blocks. A failing step fails the requests in flight, not the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from .config import EngineConfig
from .cpus import openmp_threads_released, release_openmp_threads
from .errors import RequestAbortedError
from .llm_engine import EngineSnapshot, LLMEngine
from .outputs import Prompt, Request
from .protocol import ChatMessage, RequestOutput, SamplingParams
from .registry import DEFAULT_MODEL
from .tool_format import has_images

log = logging.getLogger(__name__)


class AsyncLLM:
    """Stream completions from the embedded engine to asyncio code.

    >>> llm = AsyncLLM("smollm2-135m")
    >>> async for out in llm.chat([{"role": "user", "content": "Hi!"}]):
    ...     print(out.outputs[0].delta, end="")
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, **config: object) -> None:
        engine_config = EngineConfig(**config)  # bad settings raise here, before a thread starts
        release_openmp_threads()  # a team the caller's own torch work left (see `_build_and_run`)
        self._inbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._stopped = False
        built: concurrent.futures.Future[LLMEngine] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._build_and_run, args=(model, engine_config, built),
                                        name="agentforge-engine", daemon=True)
        self._thread.start()
        self.engine = built.result()  # a load error raises here, in the caller
        self._snapshot = self.engine.snapshot()

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def stats(self) -> EngineSnapshot:
        """The engine's load and counters as of its last step; safe from any thread."""
        return self._snapshot

    async def generate(
        self,
        prompt: Prompt,
        sampling_params: SamplingParams | None = None,
        request_id: str | None = None,
        response_format: object = None,
    ) -> AsyncIterator[RequestOutput]:
        """Yield this request's output after every step that advanced it; the last one is `finished`."""
        request = self.engine.make_request(prompt, sampling_params, request_id or uuid.uuid4().hex, response_format)
        async for out in self._stream(request):
            yield out

    async def chat(
        self,
        messages: list[ChatMessage | dict],
        sampling_params: SamplingParams | None = None,
        request_id: str | None = None,
        **options: object,
    ) -> AsyncIterator[RequestOutput]:
        """Like `generate`, for a conversation rendered with the model's chat template; `options`
        are `ChatOptions` (see `LLM.chat`). With tools, each output's `tool_call_deltas` stream
        the calls."""
        make = functools.partial(self.engine.make_chat_request, messages, sampling_params,
                                 request_id or uuid.uuid4().hex, **options)
        # reading images (decoding, a download) and tiling them is slow work: off the event loop
        request = await _off_loop(make) if self.engine.images is not None and has_images(messages) else make()
        async for out in self._stream(request):
            yield out

    async def load_lora(self, name: str, path: str | Path) -> None:
        """Load a LoRA adapter while serving (read and checked here, added between engine steps)."""
        adapter = await _off_loop(self.engine.read_lora, name, path)
        await self._call(self.engine.load_lora, name, adapter)

    async def unload_lora(self, name: str) -> None:
        """Unload an adapter between engine steps; refused while a request runs with it."""
        await self._call(self.engine.unload_lora, name)

    async def _call(self, fn, *args) -> object:
        """Run `fn(*args)` on the engine thread, between steps."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._inbox.put(("call", (future, fn, args)))
        return await asyncio.wrap_future(future)

    def abort(self, request_id: str) -> None:
        """Stop a request; its stream ends with finish_reason "abort"."""
        self._inbox.put(("abort", request_id))

    def shutdown(self) -> None:
        """Stop the engine thread; requests still running end with finish_reason "abort"."""
        self._stopped = True
        self._inbox.put(("stop", None))
        self._thread.join(timeout=10)

    async def _stream(self, request: Request) -> AsyncIterator[RequestOutput]:
        if self._stopped:
            raise RequestAbortedError("the engine has been shut down")
        rid = request.request_id
        if rid in self._streams:
            raise RequestAbortedError(f"request id {rid!r} is already streaming")
        outputs: asyncio.Queue = asyncio.Queue()
        self._streams[rid] = (asyncio.get_running_loop(), outputs)
        self._inbox.put(("add", request))
        finished = False
        try:
            while not finished:
                item = await outputs.get()
                if isinstance(item, BaseException):
                    raise item
                finished = item.finished
                yield item
        finally:
            if not finished:
                self._inbox.put(("abort", rid))
            self._streams.pop(rid, None)

    def _deliver(self, rid: str, item: RequestOutput | BaseException) -> None:
        stream = self._streams.get(rid)
        if stream is None:
            return
        loop, outputs = stream
        try:
            loop.call_soon_threadsafe(outputs.put_nowait, item)
        except RuntimeError:  # the caller's event loop is closed: nobody is listening
            self._inbox.put(("abort", rid))

    def _handle(self, kind: str, payload: object) -> None:
        if kind == "add":
            try:
                self.engine.add(payload)
            except Exception as exc:
                self._deliver(payload.request_id, exc)
        elif kind == "call":
            future, fn, args = payload
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)
        elif kind == "abort":
            out = self.engine.abort_request(payload)
            if out is not None:
                self._deliver(payload, out)

    def _build_and_run(self, model: str | Path, config: EngineConfig, built: concurrent.futures.Future) -> None:
        """Load the engine on this thread, then serve it: the engine's parallel operations, its load
        included, all start from this one thread and its one OpenMP team. A second team (the caller's,
        had it loaded the model) makes libgomp put both teams' workers to sleep between parallel
        regions (`cpus.release_openmp_threads`): SmolLM2's 64-sequence decode step took 86 ms instead
        of 50 that way."""
        try:
            self.engine = LLMEngine(model, config)
        except BaseException as exc:
            built.set_exception(exc)
            return
        built.set_result(self.engine)
        self._run()

    def _run(self) -> None:
        while True:
            self._snapshot = self.engine.snapshot()
            block = not self.engine.has_unfinished_requests()
            try:
                while True:
                    kind, payload = self._inbox.get(block=block)
                    if kind == "stop":  # end every open stream with an "abort" output
                        for rid in list(self.engine.requests):
                            self._handle("abort", rid)
                        return
                    self._handle(kind, payload)
                    block = False
            except queue.Empty:
                pass
            if not self.engine.has_unfinished_requests():
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:  # fail what was in flight, keep serving
                log.exception("engine step failed; aborting the requests in flight")
                for rid in list(self.engine.requests):
                    self.engine.abort_request(rid)
                    self._deliver(rid, RequestAbortedError(f"engine step failed: {type(exc).__name__}: {exc}"))
                continue
            self._snapshot = self.engine.snapshot()
            for out in outputs:
                self._deliver(out.request_id, out)


async def _off_loop(fn, *args):
    """`fn(*args)` in a worker thread, whose OpenMP team (if `fn` started one) ends with the call."""

    def call():
        with openmp_threads_released():
            return fn(*args)

    return await asyncio.to_thread(call)
