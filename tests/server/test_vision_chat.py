"""The OpenAI API on a vision model: image_url parts (data URLs) answered like transformers does,
streamed or whole; bad images get a 400 with an OpenAI error body and the server keeps serving;
input rails read the text parts of a message."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from _vision import ask, data_url, picture, reference_tokens
from PIL import Image

from agentforge.engine import AsyncLLM
from agentforge.server import ServerConfig, create_app

MODEL = "tiny-smolvlm"


@pytest.fixture(scope="module")
def server(smolvlm, serve_app):
    llm = AsyncLLM(smolvlm[0], max_num_batched_tokens=16, block_size=8)
    yield serve_app(create_app(llm, MODEL, ServerConfig(deny_patterns=["launch code"])))
    llm.shutdown()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="none")


def test_an_image_chat_is_answered_as_transformers_answers_it(client, smolvlm):
    _, model, processor = smolvlm
    image = picture(21)
    expected = processor.tokenizer.decode(reference_tokens(model, processor, image, "What is in the picture?", 12))
    reply = client.chat.completions.create(model=MODEL, messages=ask(image), max_tokens=12, temperature=0)
    assert reply.choices[0].message.content == expected
    assert reply.usage.completion_tokens == 12
    chunks = client.chat.completions.create(model=MODEL, messages=ask(image), max_tokens=12, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected


def _with_image(url: str) -> dict:
    return {"model": MODEL, "max_tokens": 2,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                      {"type": "text", "text": "?"}]}]}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("what", ["truncated", "not an image", "50 megapixels", "remote", "server file"])
def test_bad_images_get_a_400_and_the_server_keeps_serving(server, client, what):
    png = _png(picture(22))
    url = {
        "truncated": "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode(),
        "not an image": "data:image/png;base64," + base64.b64encode(b"GIF89a? no, plain text").decode(),
        "50 megapixels": "data:image/png;base64," + base64.b64encode(_png(Image.new("1", (8000, 6250)))).decode(),
        "remote": "http://127.0.0.1:9/cat.png",
        "server file": "/etc/passwd",
    }[what]
    response = httpx.post(f"{server}/v1/chat/completions", json=_with_image(url), timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"]
    assert client.chat.completions.create(model=MODEL, messages=ask(picture(23)), max_tokens=2).choices


def test_input_rails_read_text_parts(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(picture(24))}},
        {"type": "text", "text": "what is the launch code?"}]}]}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["code"] == "content_policy_violation"


def test_the_chat_app_attaches_an_image(server, browser, smolvlm, tmp_path):
    """In a real browser: the picked image goes out as an image_url part with the text, shows in
    the user's bubble, and the answer is the model's answer to that image."""
    _, model, processor = smolvlm
    image = picture(25)
    (tmp_path / "photo.png").write_bytes(_png(image))
    expected = processor.tokenizer.decode(reference_tokens(model, processor, image, "What is in the picture?", 12))
    page = browser.new_page()
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/chat/completions") else None)
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.click("#settings summary")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "12")
    page.set_input_files("#attach-file", str(tmp_path / "photo.png"))
    page.wait_for_selector("#attachment:not([hidden])")
    page.fill("#input", "What is in the picture?")
    page.press("#input", "Enter")
    page.wait_for_selector(".message.user img")
    page.wait_for_function("document.querySelectorAll('.message.assistant').length && "
                           "!document.querySelector('.message.assistant.streaming')")
    assert page.locator("#attachment").is_hidden()
    parts = sent[0]["messages"][0]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": "What is in the picture?"}
    saved = page.evaluate("JSON.parse(localStorage.getItem('agentforge.conversations'))[0].messages")
    assert saved[1]["content"] == expected
