"""`/v1/images/generations` and `/v1/videos`: text to image and text to video with the diffusers
pipelines the config names (`image_model`, `video_model`: local folders), or an upstream that
serves the requested model.

Images come back as base64 PNGs, whole or streamed as server-sent events: one
`image_generation.progress` event per denoising step, then `image_generation.completed` per image.
A video is a job (OpenAI's videos API): POST creates it, GET shows its status and progress,
`/content` returns the frames as an animated GIF once it is done, DELETE cancels it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ._diffusion import Cancelled, DiffusionModel, VideoJob, VideoJobs, parse_size, png_bytes
from .errors import APIError
from .openai_routes import ServerState, guard, server_state
from .proxy import Unavailable, proxy
from .routing import EMBEDDED

router = APIRouter(prefix="/v1")


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # quality, style, background: not knobs of a diffusers pipeline

    model: str | None = None
    prompt: str = Field(min_length=1, max_length=4000)
    n: int = Field(1, ge=1, le=4)
    size: str | None = Field(None, description="WIDTHxHEIGHT; the pipeline's default when omitted")
    response_format: Literal["b64_json", "url"] = "b64_json"
    stream: bool = False
    num_inference_steps: int | None = Field(None, ge=1, le=500)
    seed: int | None = None
    user: str | None = None


class VideoRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    prompt: str = Field(min_length=1, max_length=4000)
    size: str | None = None
    num_frames: int = Field(16, ge=1, le=256)
    fps: int = Field(8, ge=1, le=60)
    num_inference_steps: int | None = Field(None, ge=1, le=500)
    seed: int | None = None


def load_media(image_model: str | None, video_model: str | None) -> tuple[DiffusionModel | None, VideoJobs | None]:
    """The pipelines the server config names (loaded at start: a bad folder fails the start)."""
    image = DiffusionModel(image_model) if image_model else None
    video = VideoJobs(DiffusionModel(video_model)) if video_model else None
    return image, video


def _upstreams(name: str | None, model: DiffusionModel | None, state: ServerState, what: str) -> list[str]:
    """The upstreams to try for `name`, or [] when the local pipeline serves it (None: the local one)."""
    if model is not None and name in (None, model.name):
        return []
    resolved = state.router.resolve(name) if name else None
    names = [n for n in state.router.candidates(resolved, {}) if n != EMBEDDED] if resolved else []
    if not names:
        served = model.name if model is not None else "none (set image_model / video_model in the server config)"
        raise APIError(404, f"no {what} model `{name}`: served here: {served}", param="model", code="model_not_found")
    return names


async def _proxied(state: ServerState, names: list[str], path: str, body) -> Response:
    failures = []
    for name in names:
        try:
            return await proxy(state.router.upstreams[name], path, body, state.router.resolve(body.model), state.rails)
        except Unavailable as exc:
            failures.append(str(exc))
    raise APIError(503, "no backend could serve the request: " + "; ".join(failures), "server_error",
                   code="backends_unavailable")


@router.post("/images/generations")
async def generate_images(body: ImageRequest, request: Request, who: str = Depends(guard),
                          state: ServerState = Depends(server_state)):
    model: DiffusionModel | None = request.app.state.image_model
    _check_prompt(state, body.prompt)
    upstreams = _upstreams(body.model, model, state, "image")
    if upstreams:
        return await _proxied(state, upstreams, "/images/generations", body)
    if body.response_format == "url":
        raise APIError(400, "this server returns images inline: use response_format 'b64_json'", param="response_format")
    inputs = {"prompt": body.prompt, "num_images_per_prompt": body.n, "output_type": "pil"}
    if body.size is not None:
        inputs["width"], inputs["height"] = parse_size(body.size)
    loop, events, cancelled = asyncio.get_running_loop(), asyncio.Queue(), asyncio.Event()

    def on_step(done: int, total: int) -> None:
        loop.call_soon_threadsafe(events.put_nowait, {"type": "image_generation.progress", "step": done,
                                                      "total_steps": total})

    work = asyncio.ensure_future(asyncio.to_thread(model.run, on_step, cancelled.is_set, body.num_inference_steps,
                                                   body.seed, **inputs))
    created = int(time.time())
    if not body.stream:
        try:
            output = await asyncio.shield(work)
        except asyncio.CancelledError:  # the client went away: stop at the next step
            cancelled.set()
            raise
        images = [base64.b64encode(png_bytes(image)).decode() for image in output.images]
        return {"created": created, "data": [{"b64_json": b} for b in images],
                "size": f"{output.images[0].width}x{output.images[0].height}", "output_format": "png"}

    async def stream():
        try:
            while not work.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield f"event: image_generation.progress\ndata: {json.dumps(getter.result())}\n\n"
                else:
                    getter.cancel()
            try:
                output = work.result()
            except (APIError, Cancelled) as exc:
                error = {"type": "error", "error": {"message": str(exc)}}
                yield f"event: error\ndata: {json.dumps(error)}\n\n"
                return
            for index, image in enumerate(output.images):
                done = {"type": "image_generation.completed", "b64_json": base64.b64encode(png_bytes(image)).decode(),
                        "index": index, "created_at": created, "size": f"{image.width}x{image.height}",
                        "output_format": "png"}
                yield f"event: image_generation.completed\ndata: {json.dumps(done)}\n\n"
        finally:
            cancelled.set()  # a no-op once finished; stops a generation whose client left

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _check_prompt(state: ServerState, prompt: str) -> None:
    refusal = state.rails.check_input(prompt)
    if refusal is not None:
        raise APIError(400, refusal, code="content_policy_violation")


@router.post("/videos")
async def create_video(body: VideoRequest, request: Request, who: str = Depends(guard),
                       state: ServerState = Depends(server_state)):
    jobs: VideoJobs | None = request.app.state.video_jobs
    _check_prompt(state, body.prompt)
    upstreams = _upstreams(body.model, jobs.model if jobs is not None else None, state, "video")
    if upstreams:  # job ids would be the upstream's, polled here: send those jobs to the upstream itself
        raise APIError(400, f"video jobs run on this server's own video_model only; `{body.model}` is an upstream's",
                       param="model")
    width, height = parse_size(body.size) if body.size else (None, None)
    job = VideoJob(jobs.model.name, body.prompt, width, height, body.num_frames, body.fps, body.num_inference_steps,
                   body.seed)
    return jobs.submit(job).public()


def _job(request: Request, video_id: str) -> VideoJob:
    jobs: VideoJobs | None = request.app.state.video_jobs
    job = jobs.jobs.get(video_id) if jobs is not None else None
    if job is None:
        raise APIError(404, f"no video job {video_id!r}", param="video_id", code="not_found")
    return job


@router.get("/videos/{video_id}")
async def get_video(video_id: str, request: Request, who: str = Depends(guard)):
    return _job(request, video_id).public()


@router.get("/videos/{video_id}/content")
async def video_content(video_id: str, request: Request, who: str = Depends(guard)):
    job = _job(request, video_id)
    if job.status != "completed":
        raise APIError(409, f"video {video_id} is {job.status}, not completed", code="video_not_ready")
    return Response(job.content, media_type="image/gif")


@router.delete("/videos/{video_id}")
async def cancel_video(video_id: str, request: Request, who: str = Depends(guard)):
    job = _job(request, video_id)
    if job.status in ("queued", "in_progress"):
        job.cancel = True
        if job.status == "queued":
            job.status = "cancelled"
    return job.public()
