"""Loading and unloading LoRA adapters while serving, with vLLM's endpoints and bodies:
`POST /v1/load_lora_adapter {"lora_name", "lora_path"}` and `POST /v1/unload_lora_adapter
{"lora_name"}`. Off unless the server allows it (`runtime_lora_updates`): loading reads a folder on
the server's disk."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from agentforge.engine import EngineError

from .errors import APIError
from .openai_routes import ServerState, guard, server_state

router = APIRouter(prefix="/v1")


class LoadAdapter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lora_name: str = Field(min_length=1, max_length=128)
    lora_path: str = Field(min_length=1)


class UnloadAdapter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lora_name: str = Field(min_length=1, max_length=128)


def _allowed(state: ServerState) -> None:
    if not state.config.runtime_lora_updates:
        raise APIError(403, "loading adapters at run time is off; start the server with --runtime-lora-updates",
                       code="lora_updates_disabled")


@router.post("/load_lora_adapter")
async def load_lora_adapter(body: LoadAdapter, who: str = Depends(guard), state: ServerState = Depends(server_state)):
    _allowed(state)
    try:
        await state.llm.load_lora(body.lora_name, body.lora_path)
    except EngineError as exc:
        raise APIError(400, str(exc), param="lora_path", code="invalid_adapter") from None
    return {"id": f"{state.model_name}:{body.lora_name}", "object": "model", "parent": state.model_name}


@router.post("/unload_lora_adapter")
async def unload_lora_adapter(body: UnloadAdapter, who: str = Depends(guard), state: ServerState = Depends(server_state)):
    _allowed(state)
    try:
        await state.llm.unload_lora(body.lora_name)
    except EngineError as exc:
        raise APIError(400, str(exc), param="lora_name", code="invalid_adapter") from None
    return {"id": f"{state.model_name}:{body.lora_name}", "object": "model", "deleted": True}
