"""What of a value or a message is a secret, decided in one place.

Everything a person reads goes through here: the CLI's error and warning printer, the dry run,
the files of a run folder that reports show (journals, the plan, result.json's target and
environment, control-plane records: masked when they are written), the history store's URLs and
database errors, `harness app serve --db` errors, plan validation messages. Masked:

- the value under any key that looks like a secret (SECRET_WORDS), at any depth;
- a URL's password (`scheme://user:PASSWORD@host`) and `password=...`-style query values,
  anywhere in a string;
- values known to be secrets wherever they appear: an experiment's `secrets`, its `type: env`
  configuration whose name or variable looks like a secret, a scenario's vars named like one.

A needlessly hidden value costs less than a leaked one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"
"""What stands for a value under a secret-looking key."""
MASK = "***"
"""What stands for a password inside a string (a URL, a database's complaint)."""
SECRET_WORDS = ("secret", "token", "password", "passwd", "key", "credential", "auth", "cookie", "session")
"""A key containing one of these has its value shown as <redacted>, at any depth."""
MIN_KNOWN = 4
"""Shorter values found by their names (`named`, `experiment_secrets`, plan messages) are left
out: masking every "1" in a message would garble it."""

_PASSWORD_IN_TEXT = re.compile(
    r"(?P<user>://[^:/@\s]*:)[^@\s]*@"  # scheme://user:password@
    r"|(?P<bare>(?:^|\s)[^:/@\s]*:)[^@\s/]*@"  # user:password@host, no scheme
    r"|(?P<query>[\w.-]*(?:password|passwd|secret|token)[\w.-]*=(?!=)['\"]?)(?!<redacted>|\*\*\*)[^&\s'\"]+",
    re.IGNORECASE,
)


NOT_SECRET = ("key",)
"""Whole names that only look like secrets: a tag's or a selector requirement's `Key`."""


def secretish(key: str) -> bool:
    """Whether a key's name looks like it holds a secret."""
    key = key.lower()
    return key not in NOT_SECRET and any(word in key for word in SECRET_WORDS)


def text(message: object, secrets: Iterable[Any] = ()) -> str:
    """The message with URL passwords, secret query values and the known `secrets` masked."""
    out = str(message)
    known = {s for s in secrets if isinstance(s, str) and s}
    for value in sorted(known, key=len, reverse=True):  # a longer secret may contain a shorter one
        out = out.replace(value, MASK)
        if repr(value)[1:-1] != value:  # as a repr() shows it, with escapes
            out = out.replace(repr(value)[1:-1], MASK)

    def mask(match: re.Match[str]) -> str:
        if match["query"]:
            return f"{match['query']}{MASK}"
        return f"{match['user'] or match['bare']}{MASK}@"

    return _PASSWORD_IN_TEXT.sub(mask, out)


def scrub(value: Any, secrets: Iterable[Any] = ()) -> Any:
    """A copy with every value under a secret-looking key (at any depth) replaced by <redacted>
    and every string passed through `text`."""
    known = frozenset(s for s in secrets if isinstance(s, str))
    return _scrub(value, known)


def _scrub(value: Any, known: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and secretish(k) else _scrub(v, known) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, known) for v in value]
    if isinstance(value, str):
        return text(value, known)
    return value


def field(path: Iterable[Any], value: Any) -> Any:
    """What a message may show of the value at a key path: <redacted> under a secret-looking key."""
    if any(isinstance(part, str) and secretish(part) for part in path):
        return REDACTED
    return scrub(value)


def named(values: Mapping[str, Any]) -> set[str]:
    """The values of a mapping whose keys look like secrets (a scenario's vars), as strings."""
    found = {str(v) for k, v in values.items() if isinstance(k, str) and secretish(k) and v is not None}
    return {v for v in found if len(v) >= MIN_KNOWN}


def experiment_secrets(experiment: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> set[str]:
    """The values an experiment marks as secret: every value of its `secrets` block (inline or
    `type: env`), and `type: env` configuration whose name or variable looks like a secret."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()

    def resolve(value: Any) -> str | None:
        if isinstance(value, Mapping) and value.get("type") == "env":
            got = environ.get(str(value.get("key")), value.get("default"))
            return None if got is None else str(got)
        return value if isinstance(value, str) else None

    for scope in (experiment.get("secrets") or {}).values():
        for value in (scope or {}).values() if isinstance(scope, Mapping) else ():
            if (got := resolve(value)) is not None:
                found.add(got)
    for name, value in (experiment.get("configuration") or {}).items():
        if isinstance(value, Mapping) and value.get("type") == "env":
            named_secret = secretish(str(name)) or secretish(str(value.get("key")))
            if named_secret and (got := resolve(value)) is not None:
                found.add(got)
        elif isinstance(name, str) and secretish(name) and isinstance(value, str):
            found.add(value)
    return {v for v in found if len(v) >= MIN_KNOWN}


def journal(journal: Mapping[str, Any]) -> dict[str, Any]:
    """A Chaos Toolkit journal without its experiment's `secrets` block and with every secret
    masked at any depth (configuration, activity arguments, outputs): journals are kept in run
    folders and shown in reports. The values the experiment marks as secret are masked wherever
    they appear, under whatever key."""
    out = dict(journal)
    exp = out.get("experiment")
    known: set[str] = set()
    if isinstance(exp, Mapping):
        known = experiment_secrets(exp)
        out["experiment"] = {k: v for k, v in exp.items() if k != "secrets"}
    return scrub(out, known)
