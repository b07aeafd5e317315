"""Text-to-image and text-to-video with `diffusers` pipelines from local folders.

A pipeline runs one generation at a time in a worker thread (it is not re-entrant and takes every
core); each denoising step reports progress, and a cancelled generation stops at the next step.
Video generations are jobs: queued, run in turn, kept until the server stops.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import APIError

MAX_SIDE = 2048


class Cancelled(Exception):
    """The client went away: the generation stopped at a step boundary."""


class DiffusionModel:
    """A diffusers pipeline (`DiffusionPipeline.from_pretrained` on a local folder) under a served name."""

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        try:
            from diffusers import DiffusionPipeline
        except ImportError as exc:
            raise RuntimeError("image and video generation need diffusers: pip install 'agentforge[media]'") from exc
        path = Path(path)
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{path} is not a diffusers pipeline folder (no model_index.json)")
        self.pipeline = DiffusionPipeline.from_pretrained(path, local_files_only=True)
        self.pipeline.set_progress_bar_config(disable=True)
        self.name = name or path.name
        self._lock = threading.Lock()

    def run(self, on_step: Callable[[int, int], None], cancelled: Callable[[], bool], steps: int | None,
            seed: int | None, **inputs):
        """Call the pipeline; `on_step(done, total)` after each denoising step, `Cancelled` at the
        first step after `cancelled()` turns true. Its own input checks (sizes it cannot make, ...)
        come back as 400s."""
        import torch

        from agentforge.engine.cpus import openmp_threads_released

        parameters = inspect.signature(self.pipeline.__call__).parameters
        total = steps or parameters["num_inference_steps"].default

        def step_done(i: int) -> None:
            on_step(i + 1, total)
            if cancelled():
                raise Cancelled()  # out of the denoising loop; the lock and the tensors go with it

        if "callback_on_step_end" in parameters:
            inputs["callback_on_step_end"] = lambda pipeline, i, timestep, tensors: step_done(i) or tensors
        else:  # older pipelines (ModelScope text-to-video): callback(step, timestep, latents)
            inputs["callback"], inputs["callback_steps"] = lambda i, timestep, latents: step_done(i), 1
        if steps is not None:
            inputs["num_inference_steps"] = steps
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        # its OpenMP team would make the chat engine sleep between ops (engine.cpus)
        with self._lock, openmp_threads_released():
            try:
                output = self.pipeline(**inputs, generator=generator)
            except (ValueError, TypeError) as exc:
                raise APIError(400, f"the pipeline refused the request: {exc}") from None
        return output


def parse_size(size: str) -> tuple[int, int]:
    """OpenAI's "WIDTHxHEIGHT" -> (width, height)."""
    width, sep, height = size.partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or not (0 < int(width) <= MAX_SIDE and 0 < int(height) <= MAX_SIDE):
        raise APIError(400, f"size must be WIDTHxHEIGHT with sides from 1 to {MAX_SIDE}, got {size!r}", param="size")
    return int(width), int(height)


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: list, fps: int) -> bytes:
    """Frames (PIL images) as an animated GIF: what PIL writes without an ffmpeg."""
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=max(1, 1000 // fps), loop=0)
    return buffer.getvalue()


@dataclass
class VideoJob:
    """One text-to-video generation, as GET /v1/videos/{id} shows it."""

    model: str
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int | None
    seed: int | None
    id: str = field(default_factory=lambda: f"video_{uuid.uuid4().hex}")
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "queued"  # queued -> in_progress -> completed | failed | cancelled
    progress: int = 0
    error: str | None = None
    content: bytes | None = None
    cancel: bool = False

    def public(self) -> dict:
        return {"id": self.id, "object": "video", "model": self.model, "status": self.status,
                "progress": self.progress, "created_at": self.created_at, "size": f"{self.width}x{self.height}",
                "num_frames": self.num_frames, "fps": self.fps,
                "error": {"message": self.error} if self.error else None}


class VideoJobs:
    """Video jobs of one pipeline, run in turn by a background task."""

    def __init__(self, model: DiffusionModel) -> None:
        self.model = model
        self.jobs: dict[str, VideoJob] = {}
        self._queue: asyncio.Queue[VideoJob] | None = None
        self._worker: asyncio.Task | None = None

    def submit(self, job: VideoJob) -> VideoJob:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work())
        self.jobs[job.id] = job
        self._queue.put_nowait(job)
        return job

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job.cancel:
                continue
            job.status = "in_progress"
            try:
                frames = await asyncio.to_thread(self._generate, job)
                job.content, job.status, job.progress = gif_bytes(frames, job.fps), "completed", 100
            except Cancelled:
                job.status = "cancelled"
            except APIError as exc:
                job.status, job.error = "failed", exc.message
            except Exception as exc:  # a failing pipeline fails its job, never the server
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def _generate(self, job: VideoJob) -> list:
        def on_step(done: int, total: int) -> None:
            job.progress = min(99, 100 * done // total)

        output = self.model.run(on_step, lambda: job.cancel, job.steps, job.seed, prompt=job.prompt, width=job.width,
                                height=job.height, num_frames=job.num_frames, output_type="pil")
        frames = output.frames[0]
        return list(frames)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
