"""Zero-copy downloads under uvicorn: the ASGI ``http.response.pathsend`` extension, served with sendfile.

uvicorn implements no zero-copy extension (its ``zerocopysend`` pull request was closed, a ``pathsend`` one
is still a draft), so every blob byte would be read into Python, handed to the transport, and copied into
the socket: with 16 concurrent downloads that costs CPU and, worse, one or two chunk-sized buffers per
connection (RSS grows with the concurrency). Granian implements ``pathsend`` natively; for uvicorn this
module adds it to uvicorn's own h11 protocol: the connection's scope advertises the extension, and a
``pathsend`` message is answered with ``loop.sendfile`` — the kernel copies the page-cache pages straight
into the socket, and the process holds no buffer for them whatever the number of clients.

h11 is told about the bytes through ``send_with_data_passthrough``, the hook h11 documents for sendfile:
it checks the count against ``Content-Length`` and hands back a placeholder, whose place in the output is
filled by the kernel. The extension is advertised only where ``loop.sendfile`` is the asyncio selector
loop's (uvloop has none) and the connection is plain TCP (TLS needs the bytes in user space).

Deliberately not here: ranges (``pathsend`` sends a whole file; the route streams a ``Range`` itself) and
any decision about which file may be sent — that is the route's, this only moves bytes.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.protocols.utils import is_ssl

from lorareg.server.blob_stream import PATHSEND


class PathsendH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, whose requests may answer with ``http.response.pathsend`` (sendfile)."""

    def handle_events(self) -> None:
        """Let h11 make the request's cycle, then give it the pathsend ``send`` before its task first runs.

        The ASGI task created by ``super().handle_events`` starts on a later turn of the loop, so the
        scope's extension and the cycle's class are in place before the application sees either.
        """
        super().handle_events()
        cycle = getattr(self, "cycle", None)
        if type(cycle) is RequestResponseCycle and _sendfile_works(self.loop, self.transport):
            cycle.__class__ = _PathsendCycle  # same state, one more message type: no copy of uvicorn's code
            extensions = cast("dict[str, Any]", cycle.scope).setdefault("extensions", {})
            extensions[PATHSEND] = {}


UVICORN_OPTIONS: dict[str, Any] = {"http": PathsendH11Protocol, "loop": "asyncio"}
"""What ``lorareg serve`` (and the test suite's live server) give uvicorn: this protocol, asyncio's loop."""


class _PathsendCycle(RequestResponseCycle):
    """A request/response cycle that also accepts ``{"type": "http.response.pathsend", "path": …}``."""

    async def send(self, message: Any) -> None:
        """``pathsend`` after the response start sends the whole file and ends the response."""
        if message.get("type") != PATHSEND or not self.response_started or self.response_complete:
            await super().send(message)  # uvicorn's own checks answer any misuse
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if self.scope["method"] != "HEAD" and not await self._send_file(str(message["path"])):
            self.transport.close()  # cut short: the client sees fewer bytes than Content-Length
            self.response_complete = True
            self.message_event.set()
            self.on_response()
            return
        await super().send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_file(self, path: str) -> bool:
        """Send ``path`` as the body through h11's framing; False when it could not all be sent."""
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            placeholder = cast("bytes", _FileBytes(size))  # h11 only takes its len() and passes it back
            try:
                parts = self.conn.send_with_data_passthrough(h11.Data(data=placeholder))
            except h11.LocalProtocolError:
                return False  # a file longer than the Content-Length sent: never send more than promised
            for part in parts or ():
                if part is not placeholder:
                    self.transport.write(part)  # chunk framing, when there is no Content-Length
                    continue
                try:
                    sent = await asyncio.get_running_loop().sendfile(self.transport, file, 0, size)
                except OSError:  # the client went away mid-file (a reset or a broken pipe)
                    return False
                if sent != size:
                    return False
        return True


class _FileBytes:
    """Stands in for the file's bytes in h11's output: h11 needs only their count."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def _sendfile_works(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> bool:
    """The asyncio selector loop on plain TCP sends a file with ``os.sendfile``; others would not."""
    return hasattr(os, "sendfile") and isinstance(loop, asyncio.BaseEventLoop) and not is_ssl(transport)
