"""Text to image and text to video through the server: tiny random-weight diffusers pipelines built
here (no downloads) answer /v1/images/generations with PNGs of the requested size, whole or with
per-step progress events, and /v1/videos jobs with progress and an animated GIF; bad requests get a
4xx; an image model an upstream serves is routed there."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import pytest
import torch
from PIL import Image

from agentforge.server import ServerConfig, create_app


def _parts(tokenizer):
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer.pad_token, tokenizer.model_max_length = tokenizer.eos_token, 16
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16))
    return dict(vae=vae, text_encoder=text, tokenizer=tokenizer, scheduler=DDIMScheduler())


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory, smollm2_path):
    """(image pipeline folder, video pipeline folder): Stable Diffusion and ModelScope text-to-video shapes."""
    from diffusers import StableDiffusionPipeline, TextToVideoSDPipeline, UNet2DConditionModel, UNet3DConditionModel

    from agentforge.engine.loader import load_tokenizer

    torch.manual_seed(0)
    unet = dict(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
                cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4)
    image = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**unet, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        **_parts(load_tokenizer(smollm2_path)))
    video = TextToVideoSDPipeline(
        unet=UNet3DConditionModel(**unet, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                                  up_block_types=("UpBlock3D", "CrossAttnUpBlock3D")),
        **_parts(load_tokenizer(smollm2_path)))
    root = tmp_path_factory.mktemp("pipelines")
    image.save_pretrained(root / "tiny-sd")
    video.save_pretrained(root / "tiny-t2v")
    return root / "tiny-sd", root / "tiny-t2v"


@pytest.fixture(scope="module")
def server(pipelines, server_llm, serve_app):
    config = ServerConfig(image_model=str(pipelines[0]), video_model=str(pipelines[1]), deny_patterns=["forbidden"])
    return serve_app(create_app(server_llm, "smollm2-135m", config))


def _png(b64: str) -> Image.Image:
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG")
    return Image.open(io.BytesIO(data))


def test_images_come_back_as_pngs_of_the_requested_size(server):
    body = {"model": "tiny-sd", "prompt": "a red bicycle", "size": "64x48", "n": 2, "num_inference_steps": 2, "seed": 7}
    response = httpx.post(f"{server}/v1/images/generations", json=body, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [_png(d["b64_json"]).size for d in data] == [(64, 48), (64, 48)]
    again = httpx.post(f"{server}/v1/images/generations", json=body, timeout=120).json()["data"]
    other = httpx.post(f"{server}/v1/images/generations", json={**body, "seed": 8}, timeout=120).json()["data"]
    assert again == data and other != data  # a seed reproduces an image


def test_streaming_reports_progress_per_step_then_the_image(server):
    body = {"prompt": "a lighthouse", "size": "32x32", "num_inference_steps": 3, "stream": True}
    events = []
    with httpx.stream("POST", f"{server}/v1/images/generations", json=body, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    progress = [e for e in events if e["type"] == "image_generation.progress"]
    assert [(e["step"], e["total_steps"]) for e in progress] == [(1, 3), (2, 3), (3, 3)]
    assert events[-1]["type"] == "image_generation.completed" and _png(events[-1]["b64_json"]).size == (32, 32)


@pytest.mark.parametrize("body, status", [
    ({"prompt": "x", "size": "60x48"}, 400),  # the pipeline needs multiples of 8
    ({"prompt": "x", "size": "big"}, 400),
    ({"prompt": "x", "size": "99999x64"}, 400),
    ({"prompt": "x", "n": 9}, 400),
    ({"prompt": ""}, 400),
    ({"prompt": "x", "response_format": "url"}, 400),
    ({"prompt": "something forbidden"}, 400),
    ({"prompt": "x", "model": "dall-e-3"}, 404),
])
def test_bad_image_requests_get_a_4xx(server, body, status):
    response = httpx.post(f"{server}/v1/images/generations", json={"num_inference_steps": 1, **body}, timeout=120)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_a_video_job_reports_progress_and_returns_its_frames(server):
    job = httpx.post(f"{server}/v1/videos", json={"prompt": "waves", "size": "32x24", "num_frames": 5,
                                                  "num_inference_steps": 4, "seed": 1}).json()
    assert job["object"] == "video" and job["status"] in ("queued", "in_progress")
    seen = set()
    for _ in range(600):
        job = httpx.get(f"{server}/v1/videos/{job['id']}").json()
        seen.add(job["progress"])
        if job["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.05)
    assert job["status"] == "completed" and job["progress"] == 100, job["error"]
    assert seen <= {0, 25, 50, 75, 99, 100}  # per step; the last one shows 99 until the GIF is written
    gif = Image.open(io.BytesIO(httpx.get(f"{server}/v1/videos/{job['id']}/content").content))
    assert gif.format == "GIF" and gif.size == (32, 24) and gif.n_frames == 5


def test_video_jobs_can_be_cancelled_and_unknown_ones_are_404(server):
    slow = httpx.post(f"{server}/v1/videos", json={"prompt": "a storm", "size": "64x64", "num_frames": 8,
                                                   "num_inference_steps": 400}).json()
    queued = httpx.post(f"{server}/v1/videos", json={"prompt": "rain", "num_frames": 2}).json()
    assert httpx.delete(f"{server}/v1/videos/{queued['id']}").json()["status"] == "cancelled"
    httpx.delete(f"{server}/v1/videos/{slow['id']}")
    for _ in range(600):
        if httpx.get(f"{server}/v1/videos/{slow['id']}").json()["status"] == "cancelled":
            break
        time.sleep(0.05)
    assert httpx.get(f"{server}/v1/videos/{slow['id']}").json()["status"] == "cancelled"
    assert httpx.get(f"{server}/v1/videos/{slow['id']}/content").status_code == 409
    assert httpx.get(f"{server}/v1/videos/video_nope").status_code == 404
    assert httpx.post(f"{server}/v1/videos", json={"prompt": "x", "num_frames": 0}).status_code == 400


def test_an_upstream_image_model_is_routed_to_it(server, server_llm, serve_app):
    front = serve_app(create_app(server_llm, "smollm2-135m", ServerConfig(
        upstreams=[{"name": "art", "url": f"{server}/v1", "models": ["tiny-sd"]}])))
    body = {"model": "tiny-sd", "prompt": "a red bicycle", "size": "32x32", "num_inference_steps": 2, "seed": 7}
    via = httpx.post(f"{front}/v1/images/generations", json=body, timeout=120)
    assert via.status_code == 200, via.text
    assert via.json()["data"] == httpx.post(f"{server}/v1/images/generations", json=body, timeout=120).json()["data"]
    assert httpx.post(f"{front}/v1/images/generations", json={"prompt": "x"}).status_code == 404
