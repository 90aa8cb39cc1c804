"""Meeting adapters where they live: UI model folders (ComfyUI, A1111) and libraries on shared drives.

* :mod:`~lorareg.client.folders.importing` — ``lorareg import``: walk, hash, read sidecars, draft manifests;
* :mod:`~lorareg.client.folders.publishing` — sign and publish an import, resumably;
* :mod:`~lorareg.client.folders.install` — ``lorareg pull --into``: a verified file and the sidecars UIs read;
* :mod:`~lorareg.client.folders.audit` — ``lorareg audit``: verified / known / revoked / modified … per file,
  quarantine;
* :mod:`~lorareg.client.folders.sidecars`, :mod:`~lorareg.client.folders.draft` — the sidecar formats read,
  and how their claims become a draft; :mod:`~lorareg.client.folders.hashcache` — the persistent
  (path, size, mtime_ns, inode) digest cache; :mod:`~lorareg.client.folders.near_duplicates` — where weight
  fingerprints plug in. Details: ``docs/folders.md``.
"""

from __future__ import annotations
