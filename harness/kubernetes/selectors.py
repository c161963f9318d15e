"""Kubernetes label selectors: parse the text form, match labels, and turn a LabelSelector object
(`matchLabels` / `matchExpressions`, as in NetworkPolicy and Deployment specs) into the text form.

The probes use it to find the deployments whose pods a plan's selector picks; the dry run to
say which pods a network policy would select. Grammar as kubectl's: `a=b`, `a==b`, `a!=b`,
`a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated, all must hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Requirement = Callable[[Mapping[str, str]], bool]
_SET = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(text: str) -> list[str]:
    """Commas inside `( )` belong to a set; the others separate requirements."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse(text: str | None) -> list[Requirement]:
    """The requirements of a selector; ValueError for text kubectl would refuse."""
    out: list[Requirement] = []
    for part in _split(text or ""):
        if m := _SET.match(part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                out.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                out.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            out.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=").split("=", 1))
            if not key:
                raise ValueError(f"label selector {text!r}: {part!r} has no key")
            out.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif part.startswith("!"):
            absent = part[1:].strip()
            out.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", part):
            out.append(lambda labels, k=part: k in labels)
        else:
            raise ValueError(f"label selector {text!r}: cannot read {part!r}")
    return out


def matches(text: str | None, labels: Mapping[str, str] | None) -> bool:
    """Whether labels satisfy the selector (an empty selector selects everything)."""
    labels = labels or {}
    return all(req(labels) for req in parse(text))


def to_text(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object as selector text (`{}` selects everything: "")."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"label selector operator {op!r} is not one of In, NotIn, Exists, DoesNotExist")
    return ",".join(parts)
