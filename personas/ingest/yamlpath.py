"""Where in a mapping YAML a validation error points, in words a user can follow."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def loc_text(loc: list[Any], data: Any) -> str:
    """``sources[0] 'orders' > columns > ts > format``: the path a user follows in the YAML."""
    parts: list[str] = []
    node = data
    i = 0
    while i < len(loc):
        p = loc[i]
        if isinstance(p, int):
            label = ""
            if isinstance(node, list) and p < len(node):
                node = node[p]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label = f" {node['name']!r}"
            else:
                node = None
            parts[-1] = parts[-1] + f"[{p}]{label}" if parts else f"[{p}]"
        elif (
            p == "outputs"
            and isinstance(node, dict)
            and "outputs" not in node
            and i + 1 < len(loc)
            and loc[i + 1] == 0
        ):
            i += 1  # written with the single-output shorthand (table:/columns: on the source)
        else:
            parts.append(str(p))
            node = node.get(p) if isinstance(node, dict) else None
        i += 1
    return " > ".join(parts) if parts else "(top level)"


def inner_model(annotation: Any) -> Any:
    import typing

    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for a in args:
        m = inner_model(a)
        if m is not None:
            return m
    return None
