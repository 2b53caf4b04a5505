"""stub: implementation follows."""

from typing import Any


class HookRegistry:
    def __init__(self, host: Any, secret: Any) -> None:
        self.host = host

    def register(self, name: str, **kwargs: Any) -> None:
        raise NotImplementedError


def __getattr__(name: str) -> Any:
    def _missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(name)

    return _missing
