"""The engine's exception hierarchy: every error it raises on purpose is an `EngineError`."""


class EngineError(Exception):
    """Base class for errors raised by `agentforge.engine`."""


class InvalidRequestError(EngineError, ValueError):
    """A request the engine cannot serve as asked (bad prompt, bad sampling values)."""


class ContextLengthError(InvalidRequestError):
    """The prompt (plus what must be generated) does not fit the model's context window."""


class ModelNotFoundError(EngineError, LookupError):
    """Neither a known alias nor an existing path."""


class ModelLoadError(EngineError):
    """The model files exist but cannot be read (corrupt file, unsupported architecture or tensor type)."""


class RequestAbortedError(EngineError):
    """The request was aborted, or failed inside the engine, before it finished."""
