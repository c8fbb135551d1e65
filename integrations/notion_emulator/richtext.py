"""Rich text: request items in, Notion's full rich text objects out.

Requests may omit `type`, `annotations`, `link`; responses always carry every
key, with `plain_text` and `href` filled in. Limits are enforced here with the
validation messages Notion uses, since every block, property and comment path
funnels through this module.
"""

from __future__ import annotations

from typing import Any

from . import errors

MAX_TEXT = 2000
MAX_URL = 2000
MAX_EQUATION = 1000
MAX_ARRAY = 100

ANNOTATION_KEYS = ("bold", "italic", "strikethrough", "underline", "code")
COLORS = frozenset(
    {
        "default",
        "gray",
        "brown",
        "orange",
        "yellow",
        "green",
        "blue",
        "purple",
        "pink",
        "red",
        "default_background",
        "gray_background",
        "brown_background",
        "orange_background",
        "yellow_background",
        "green_background",
        "blue_background",
        "purple_background",
        "pink_background",
        "red_background",
    }
)


def default_annotations() -> dict[str, Any]:
    return {key: False for key in ANNOTATION_KEYS} | {"color": "default"}


def check_array(value: Any, path: str, limit: int = MAX_ARRAY) -> list[Any]:
    if not isinstance(value, list):
        raise errors.body_invalid(path, "should be an array", value)
    if len(value) > limit:
        raise errors.too_long(path, limit, len(value))
    return value


def _annotations(raw: Any, path: str) -> dict[str, Any]:
    out = default_annotations()
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    for key in ANNOTATION_KEYS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise errors.body_invalid(f"{path}.{key}", "should be a boolean", raw[key])
            out[key] = raw[key]
    if "color" in raw:
        if raw["color"] not in COLORS:
            raise errors.body_invalid(f"{path}.color", "should be a valid color", raw["color"])
        out["color"] = raw["color"]
    return out


def _text(raw: Any, path: str) -> tuple[dict[str, Any], str, str | None]:
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    content = raw.get("content")
    if not isinstance(content, str):
        raise errors.body_invalid(f"{path}.content", "should be a string", content)
    if len(content) > MAX_TEXT:
        raise errors.too_long(f"{path}.content", MAX_TEXT, len(content))
    link = raw.get("link")
    url: str | None = None
    if link is not None:
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            raise errors.body_invalid(f"{path}.link", "should be an object or `null`", link)
        url = link["url"]
        if len(url) > MAX_URL:
            raise errors.too_long(f"{path}.link.url", MAX_URL, len(url))
    return {"content": content, "link": {"url": url} if url else None}, content, url


def _mention(raw: Any, path: str) -> tuple[dict[str, Any], str]:
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    kind = raw.get("type") or next(
        (k for k in ("date", "user", "page", "database") if k in raw), None
    )
    if kind == "date":
        value = raw.get("date")
        if not isinstance(value, dict) or not isinstance(value.get("start"), str):
            raise errors.body_invalid(f"{path}.date", "should be an object", value)
        date = {
            "start": value["start"],
            "end": value.get("end"),
            "time_zone": value.get("time_zone"),
        }
        plain = date["start"] + (f" → {date['end']}" if date["end"] else "")
        return {"type": "date", "date": date}, plain
    if kind == "user":
        value = raw.get("user")
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise errors.body_invalid(f"{path}.user", "should be an object", value)
        # render.with_mentions fills in the name: it needs the workspace's users.
        return {"type": "user", "user": {"object": "user", "id": value["id"]}}, "@"
    if kind in ("page", "database"):
        value = raw.get(kind)
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise errors.body_invalid(f"{path}.{kind}", "should be an object", value)
        return {"type": kind, kind: {"id": value["id"]}, "href": None}, "Untitled"
    raise errors.body_invalid(path, "should be a supported mention", raw)


def normalize_item(raw: Any, path: str) -> dict[str, Any]:
    """One request rich text item to its response form."""
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    kind = raw.get("type") or next((k for k in ("text", "mention", "equation") if k in raw), None)
    annotations = _annotations(raw.get("annotations"), f"{path}.annotations")
    if kind == "text":
        text, plain, href = _text(raw.get("text"), f"{path}.text")
        return {
            "type": "text",
            "text": text,
            "annotations": annotations,
            "plain_text": plain,
            "href": href,
        }
    if kind == "equation":
        eq = raw.get("equation")
        expr = eq.get("expression") if isinstance(eq, dict) else None
        if not isinstance(expr, str):
            raise errors.body_invalid(f"{path}.equation.expression", "should be a string", expr)
        if len(expr) > MAX_EQUATION:
            raise errors.too_long(f"{path}.equation.expression", MAX_EQUATION, len(expr))
        return {
            "type": "equation",
            "equation": {"expression": expr},
            "annotations": annotations,
            "plain_text": expr,
            "href": None,
        }
    if kind == "mention":
        mention, plain = _mention(raw.get("mention"), f"{path}.mention")
        mention.pop("href", None)
        return {
            "type": "mention",
            "mention": mention,
            "annotations": annotations,
            "plain_text": plain,
            "href": None,
        }
    raise errors.body_invalid(
        path, "should be defined as one of `text`, `mention`, `equation`", raw
    )


def normalize(raw: Any, path: str) -> list[dict[str, Any]]:
    items = check_array(raw, path)
    return [normalize_item(item, f"{path}[{i}]") for i, item in enumerate(items)]


def plain_text(items: list[dict[str, Any]]) -> str:
    return "".join(item.get("plain_text", "") for item in items)


def from_plain(text: str) -> list[dict[str, Any]]:
    """Plain text split into ≤2,000-character items, as a person's edit would store it."""
    if not text:
        return []
    chunks = [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)]
    return [normalize_item({"text": {"content": c}}, "text") for c in chunks]
