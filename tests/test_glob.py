"""The glob matcher of KEYS and SCAN (olivia.core.glob), against a plain
backtracking matcher written from Redis's rules, on arbitrary patterns."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from olivia.core.glob import matcher, matches

ALPHABET = b"ab*?[]^-\\\x00\n"


def reference(pattern: bytes, key: bytes) -> bool:
    """Redis's stringmatchlen, as plainly as it can be written (slow)."""
    if not pattern:
        return not key
    head = pattern[0]
    if head == ord("*"):
        return any(reference(pattern[1:], key[i:]) for i in range(len(key) + 1))
    if head == ord("?"):
        return bool(key) and reference(pattern[1:], key[1:])
    if head == ord("\\") and len(pattern) > 1:
        return bool(key) and key[0] == pattern[1] and reference(pattern[2:], key[1:])
    if head == ord("["):
        close = _set_end(pattern)
        if close is not None:
            return bool(key) and _in_set(pattern[1:close], key[0]) and \
                reference(pattern[close + 1:], key[1:])
    return bool(key) and key[0] == head and reference(pattern[1:], key[1:])


def _set_end(pattern: bytes) -> int | None:
    index = 1
    if index < len(pattern) and pattern[index] == ord("^"):
        index += 1
    while index < len(pattern) and pattern[index] != ord("]"):
        index += 2 if pattern[index] == ord("\\") and index + 1 < len(pattern) else 1
    return index if index < len(pattern) else None


def _in_set(body: bytes, byte: int) -> bool:
    negate = body[:1] == b"^"
    if negate:
        body = body[1:]
    members = []
    index = 0
    while index < len(body):
        low = body[index]
        if low == ord("\\") and index + 1 < len(body):
            index += 1
            low = body[index]
        index += 1
        if index + 1 < len(body) and body[index] == ord("-"):
            high = body[index + 1]
            if high == ord("\\") and index + 2 < len(body):
                index += 1
                high = body[index + 1]
            index += 2
            members.append((min(low, high), max(low, high)))
        else:
            members.append((low, low))
    found = any(low <= byte <= high for low, high in members)
    return found != negate


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=8).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)),
       st.binary(max_size=8).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)))
def test_the_matcher_agrees_with_the_plain_one(pattern: bytes, key: bytes) -> None:
    assert matches(pattern, key) == reference(pattern, key), (pattern, key)


@given(st.binary(max_size=30))
def test_star_matches_every_key_and_an_escaped_key_only_itself(key: bytes) -> None:
    assert matcher(b"*")(key)
    escaped = b"".join(b"\\" + bytes((byte,)) for byte in key)
    assert matches(escaped, key)
    assert not matches(escaped, key + b"x")


def test_examples_from_redis() -> None:
    assert matches(b"h?llo", b"hello") and matches(b"h?llo", b"hallo")
    assert matches(b"h*llo", b"hllo") and matches(b"h*llo", b"heeeello")
    assert matches(b"h[ae]llo", b"hello") and not matches(b"h[ae]llo", b"hillo")
    assert matches(b"h[^e]llo", b"hallo") and not matches(b"h[^e]llo", b"hello")
    assert matches(b"h[a-b]llo", b"hbllo") and not matches(b"h[a-b]llo", b"hcllo")
    assert matches(b"user:\\*", b"user:*") and not matches(b"user:\\*", b"user:1")
    assert matches(b"[", b"[") and matches(b"a[b", b"a[b")
