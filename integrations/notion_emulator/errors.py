"""Notion's error objects.

Every failure inside a handler is raised as `NotionError` and turned into the
JSON body Notion answers with, so handlers never build error responses by hand
and messages stay in one place, worded as the live API words them.
"""

from __future__ import annotations

import json
from typing import Any


class NotionError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        additional_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.additional_data = additional_data

    def body(self, request_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "object": "error",
            "status": self.status,
            "code": self.code,
            "message": self.message,
        }
        if self.additional_data is not None:
            out["additional_data"] = self.additional_data
        out["request_id"] = request_id
        return out


def js(value: Any) -> str:
    """Render a value the way Notion quotes it inside validation messages."""
    if value is None:
        return "undefined"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def validation(message: str) -> NotionError:
    return NotionError(400, "validation_error", message)


def body_invalid(path: str, expectation: str, value: Any) -> NotionError:
    """`body failed validation: body.x should be ..., instead was `...`.`"""
    return validation(f"body failed validation: {path} {expectation}, instead was `{js(value)}`.")


def too_long(path: str, limit: int, actual: int) -> NotionError:
    return validation(
        f"body failed validation: {path}.length should be ≤ `{limit}`, instead was `{actual}`."
    )


def unauthorized() -> NotionError:
    return NotionError(401, "unauthorized", "API token is invalid.")


def missing_version() -> NotionError:
    return NotionError(
        400,
        "missing_version",
        "Notion-Version header failed validation: Notion-Version header should be defined, "
        "instead was `undefined`.",
    )


def invalid_request_url() -> NotionError:
    return NotionError(400, "invalid_request_url", "Invalid request URL.")


def invalid_json() -> NotionError:
    return NotionError(400, "invalid_json", "Error parsing JSON body.")


def not_found(kind: str, id_: str, integration_name: str, integration_id: str) -> NotionError:
    # Notion answers the same 404 for "does not exist" and "not shared with you";
    # the message always carries the integration's name and the data its id.
    return NotionError(
        404,
        "object_not_found",
        f"Could not find {kind} with ID: {id_}. Make sure the relevant pages and databases "
        f'are shared with your integration "{integration_name}".',
        {"integration_id": integration_id},
    )


def archived_edit() -> NotionError:
    return validation(
        "Can't edit block that is archived. You must unarchive the block before editing."
    )
