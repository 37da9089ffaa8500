"""The wire between a sandboxed run and the server: length-prefixed frames of JSON, with raw byte blobs (PNG
pictures) after a header that announces them. Nothing is unpickled: what a run sends is hostile, so the reader
bounds each frame's size, a run's frame count and its total bytes, and the JSON's depth by its size."""
from __future__ import annotations

import json
import socket
import struct

MAX_FRAME = 8 << 20          # one frame (a PNG of a large figure is well under 1 MB)
MAX_TOTAL = 48 << 20         # everything one run may send
MAX_FRAMES = 20_000          # streamed output is batched, so this is far more than a chatty program needs
_LEN = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent something outside the protocol or its bounds."""


def send(sock: socket.socket, header: dict, blobs: list[bytes] = ()) -> None:
    head = json.dumps({**header, "blobs": len(blobs)}, separators=(",", ":")).encode()
    parts = [_LEN.pack(len(head)), head]
    for b in blobs:
        parts += [_LEN.pack(len(b)), b]
    sock.sendall(b"".join(parts))


class Reader:
    """An incremental parser of one run's frames with the bounds above: feed() bytes as they arrive, then take
    messages() (each (header, blobs)); read_blocking() is the child's way to take the first message."""

    def __init__(self):
        self.total = 0
        self.frames = 0
        self._buf = bytearray()
        self._pending: list[bytes] = []   # complete frames not yet grouped into a message

    def feed(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= _LEN.size:
            (n,) = _LEN.unpack_from(self._buf)
            if n > MAX_FRAME:
                raise FrameError(f"a frame of {n} bytes (the limit is {MAX_FRAME})")
            if len(self._buf) < _LEN.size + n:
                if self.total + len(self._buf) > MAX_TOTAL:
                    raise FrameError("the program sent more than the sandbox accepts from one run")
                return
            self.total += n
            self.frames += 1
            if self.total > MAX_TOTAL or self.frames > MAX_FRAMES:
                raise FrameError("the program sent more than the sandbox accepts from one run")
            self._pending.append(bytes(self._buf[_LEN.size:_LEN.size + n]))
            del self._buf[:_LEN.size + n]

    def messages(self) -> list[tuple[dict, list[bytes]]]:
        out = []
        while self._pending:
            try:
                header = json.loads(self._pending[0])
            except (ValueError, RecursionError) as exc:
                raise FrameError(f"a frame that is not JSON ({type(exc).__name__})") from None
            if not isinstance(header, dict) or not isinstance(header.get("t"), str):
                raise FrameError("a frame without a type")
            n = header.get("blobs", 0)
            if not isinstance(n, int) or not 0 <= n <= 64:
                raise FrameError("a frame announcing too many blobs")
            if len(self._pending) < 1 + n:
                break
            blobs = self._pending[1:1 + n]
            del self._pending[:1 + n]
            out.append((header, blobs))
        return out

    def read_blocking(self, sock: socket.socket) -> tuple[dict, list[bytes]] | None:
        """The next message from a blocking socket (None at EOF)."""
        while True:
            msgs = self.messages()
            if msgs:
                first, rest = msgs[0], msgs[1:]
                if rest:
                    raise FrameError("more than one message where one was expected")
                return first
            chunk = sock.recv(65536)
            if not chunk:
                return None
            self.feed(chunk)
