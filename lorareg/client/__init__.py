"""The registry client: HTTP calls, pull and its checks, download, the local cache, revocation lookup.

``Client`` is the face; the submodules are ``api_client`` (HTTP), ``pull`` (verify what was downloaded),
``download``/``download_http`` (streaming), ``cache`` (content-addressed store), ``revocations`` and
``folders`` (import, install into and audit UI folders).

``Client`` is resolved on first use: an offline ``lorareg audit`` imports ``lorareg.client.folders`` and the
cache without paying for httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorareg.client.api_client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    """``Client``, and the ``api_client`` submodule as an attribute, imported on first use."""
    if name in ("Client", "api_client"):
        import importlib

        api_client = importlib.import_module("lorareg.client.api_client")
        return api_client.Client if name == "Client" else api_client
    raise AttributeError(f"module 'lorareg.client' has no attribute {name!r}")
