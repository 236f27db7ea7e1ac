"""The verified caller, as the application sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    """An active introspection answer (RFC 7662 §2.2), reduced to what an API needs."""

    sub: str | None
    client_id: str | None
    scope: frozenset[str]
    aud: tuple[str, ...]
    exp: int | None
    token_type: str | None
    answer: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> Principal:
        aud = answer.get("aud") or ()
        exp = answer.get("exp")
        return cls(sub=answer.get("sub"), client_id=answer.get("client_id"),
                   scope=frozenset(str(answer.get("scope") or "").split()),
                   aud=(aud,) if isinstance(aud, str) else tuple(aud),
                   exp=int(exp) if isinstance(exp, int | float) else None,
                   token_type=answer.get("token_type"), answer=answer)

    def has_scopes(self, *needed: str) -> bool:
        return set(needed) <= self.scope
