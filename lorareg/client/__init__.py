"""The registry client: HTTP calls, pull and its checks, download, the local cache, revocation lookup.

``Client`` is the face; the submodules are ``api_client`` (HTTP), ``pull`` (verify what was downloaded),
``download``/``download_http`` (streaming), ``cache`` (content-addressed store) and ``revocations``.
"""

from __future__ import annotations

from lorareg.client.api_client import Client

__all__ = ["Client"]
