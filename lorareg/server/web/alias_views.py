"""View model of the adapter page's "Aliases" panel: which alias names which version, and who moved it.

Kept apart from ``views.py`` so the adapter page gains the panel with one line there; formatting happens
here, the template (``_aliases.html``) only loops.
"""

from __future__ import annotations

from typing import Any

from lorareg.registry import Aliases, Registry


def alias_links(registry: Registry, name: str, *, current: str) -> list[dict[str, Any]]:
    """Every alias of ``name``: its label, the version and its page, who moved it and when."""
    from lorareg.server.web.views import adapter_url

    return [
        {
            "alias": a.alias,
            "version": a.version,
            "url": adapter_url(name, a.version),
            "alias_url": adapter_url(name, a.alias),
            "current": a.version == current,
            "moved_by": a.moved_by,
            "moved": a.moved_at.strftime("%Y-%m-%d %H:%M UTC"),
            "pull_command": f"lorareg pull {name}@{a.alias} --verify",
        }
        for a in Aliases(registry).of(name)
    ]
