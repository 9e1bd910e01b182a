"""SHA-256 for kai's cache keys (the rule catalog's, the CEL programs'), without OpenSSL.

`import hashlib` loads OpenSSL's libcrypto through _hashlib: ~11 M instructions, 2% of a one-file
`kai review`, for a few short keys. CPython's own SHA-256 module gives the same digests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, cast


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _constructor() -> Callable[[bytes], Hash]:
    for name in ("_sha2", "_sha256"):  # CPython 3.12 and later; 3.11
        try:
            return cast(Callable[[bytes], Hash], importlib.import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    import hashlib  # pragma: no cover - another interpreter

    return hashlib.sha256  # pragma: no cover


sha256 = _constructor()
