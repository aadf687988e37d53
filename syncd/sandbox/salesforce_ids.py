"""Salesforce record Ids: 15-char case-sensitive bodies with the 3-char case-safe checksum suffix.

Clients compare, store and index Ids; the 18-char form exists because many tools (spreadsheets among
them) compare case-insensitively. The sandbox hands out the same form, so a connector that mangles case
or truncates to 15 chars fails here as it would against a real org.
"""

from __future__ import annotations

import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")

# The two "pod" characters and the reserved character real Ids carry after the key prefix.
_POD = "Sb"


def checksum_suffix(body15: str) -> str:
    """The 3 characters Salesforce appends: one per 5-char chunk, a bit per upper-case letter."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(body15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


def make_id(key_prefix: str, number: int) -> str:
    """The `number`-th Id of an object whose key prefix is `key_prefix`, in 18-char form."""
    digits = ""
    n = number
    while n:
        n, rem = divmod(n, 62)
        digits = BASE62[rem] + digits
    body = key_prefix + _POD + "0" + digits.rjust(9, "0")
    if len(body) != 15:
        raise ValueError(f"Id counter overflow for prefix {key_prefix}")
    return body + checksum_suffix(body)


def normalize_id(value: str) -> str | None:
    """The 18-char form of a 15- or 18-char Id, or None when `value` is not an Id at all.

    An 18-char Id whose suffix does not match its body is refused, as Salesforce refuses it.
    """
    if not _ID_RE.match(value):
        return None
    body = value[:15]
    full = body + checksum_suffix(body)
    if len(value) == 18 and value.upper() != full.upper():
        return None
    return full
