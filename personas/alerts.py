"""Alerts to a chat webhook: on a refit, on drift over threshold and on a failed refresh.

The body is JSON with a ``text`` field, the shape Slack, Mattermost, Rocket.Chat and Google
Chat incoming webhooks accept (Microsoft Teams workflows and Discord read ``text`` /
``content``; both are sent), plus a ``personas`` object with the details for other tools.
A dead webhook never fails a run: :func:`post` logs and returns False.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)


def event_for(mode: str, over_threshold: list[str]) -> str | None:
    """Which alert a refresh sends: "refit", "drift" (assigned despite drift) or none."""
    if mode == "refit":
        return "refit"
    return "drift" if over_threshold else None


def message(event: str, reason: str, report: str | None = None, workspace: str = "") -> str:
    """One chat line: what happened, why, where the report is."""
    head = {
        "refit": "personas: model refitted",
        "drift": "personas: drift over threshold",
        "failure": "personas: refresh FAILED",
    }.get(event, f"personas: {event}")
    where = f" [{workspace}]" if workspace else ""
    tail = f" Report: {report}" if report else ""
    return f"{head}{where}: {reason}.{tail}"


def post(
    url: str | None,
    event: str,
    reason: str,
    report: str | None = None,
    details: dict[str, Any] | None = None,
    workspace: str = "",
    timeout: float = 10.0,
) -> bool:
    """POST the alert; True when the webhook answered 2xx, False (logged) otherwise."""
    if not url:
        return False
    text = message(event, reason, report, workspace)
    body = {
        "text": text,
        "content": text,
        "personas": {
            "event": event,
            "reason": reason,
            "report": report,
            "workspace": workspace,
            **(details or {}),
        },
    }
    try:
        req = urllib.request.Request(
            url,
            data=json.dumps(body, default=str).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            ok = 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError) as e:
        log.warning("alert webhook %s failed: %s (the run goes on)", _safe(url), e)
        return False
    if not ok:
        log.warning("alert webhook %s answered %s (the run goes on)", _safe(url), resp.status)
    return ok


def _safe(url: str) -> str:
    """The webhook's host only: its path is usually the secret."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "(invalid url)"
