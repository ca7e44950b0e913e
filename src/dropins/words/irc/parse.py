"""IRC lines in and out (RFC 1459 framing with IRCv3 message tags)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Line", "decode", "format_line", "parse"]

MAX_LINE = 512  # bytes, with CR LF, without tags
MAX_TAGS = 8191


@dataclass
class Line:
    command: str
    params: list[str]
    tags: dict[str, str]


def decode(data: bytes) -> str:
    """UTF-8, else latin-1 (old clients), so no byte is ever refused."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse(text: str) -> Line | None:
    """One line without CR LF; None when it has no command."""
    tags: dict[str, str] = {}
    text = text.lstrip(" ")
    if text.startswith("@"):
        raw, _, text = text.partition(" ")
        for item in raw[1:].split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = value
        text = text.lstrip(" ")
    if text.startswith(":"):
        _, _, text = text.partition(" ")
    trailing = None
    if " :" in text:
        text, _, trailing = text.partition(" :")
    elif text.startswith(":"):
        trailing = text[1:]
        text = ""
    words = text.split()
    if not words:
        return None
    params = words[1:] + ([trailing] if trailing is not None else [])
    return Line(words[0].upper(), params, tags)


def format_line(source: str | None, command: str, params: list[str],
                tags: dict[str, str] | None = None) -> bytes:
    """The wire form, cut to 512 bytes (tags aside); the last parameter made trailing."""
    parts = [":" + source] if source else []
    parts.append(command)
    params = [p.replace("\r", " ").replace("\n", " ") for p in params]
    if params:
        *middle, last = params
        parts.extend(middle)
        parts.append(":" + last if (not last or " " in last or last.startswith(":")) else last)
    body = " ".join(parts).encode("utf-8", "replace")[:MAX_LINE - 2]
    body = body.decode("utf-8", "ignore").encode("utf-8")
    head = ""
    if tags:
        head = "@" + ";".join(f"{k}={v}" if v else k for k, v in tags.items()) + " "
    return head.encode("utf-8") + body + b"\r\n"
