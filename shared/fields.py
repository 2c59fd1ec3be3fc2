"""Field types shared by both services' inputs: bounded, printable text."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# Printable text: no control characters, not only white space.
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^(?!\s*$)[^\x00-\x1f\x7f]+$",
        description="1–64 printable characters",
    ),
]
Reason = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$")
]
UserId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the platform's id for the person scanning",
    ),
]
