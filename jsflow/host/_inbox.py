"""stub: implementation follows."""

from typing import Any


def __getattr__(name: str) -> Any:
    def _missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(name)

    return _missing
