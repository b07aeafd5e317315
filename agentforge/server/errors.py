"""Errors as the OpenAI API shapes them: `{"error": {"message", "type", "param", "code"}}` with a 4xx
for bad requests (never a 500 for the client's mistake), 5xx only for the server's own."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentforge.engine import ContextLengthError, EngineError, InvalidRequestError


class APIError(Exception):
    """Raised by a route: becomes an OpenAI error body with `status`."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """OpenAI error bodies for API errors, invalid bodies, unknown routes and engine errors."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return error_response(400, f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}")
        location = [str(p) for p in first.get("loc", ()) if p != "body"]
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                            for e in errors)
        return error_response(400, message, param=".".join(location) or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "not_found_error" if exc.status_code == 404 else
                              "invalid_request_error")

    @app.exception_handler(EngineError)
    async def engine_error(request: Request, exc: EngineError):
        code = "context_length_exceeded" if isinstance(exc, ContextLengthError) else None
        if isinstance(exc, InvalidRequestError):
            return error_response(400, str(exc), code=code)
        return error_response(500, str(exc), "server_error")
