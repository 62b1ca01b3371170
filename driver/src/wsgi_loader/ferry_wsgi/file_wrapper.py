"""wsgi.file_wrapper (PEP 3333's optional extension) and sending a file with
os.sendfile, so that its bytes never pass through Python."""

import os
import stat

from . import ClientGone


class FileWrapper(object):
    """wsgi.file_wrapper (PEP 3333): iterates over a file-like in blocks. When the
    app returns one whose file has a real descriptor on a regular file, the loader
    sends the file with os.sendfile instead, without its bytes passing through
    Python."""

    __slots__ = ("filelike", "block_size")

    def __init__(self, filelike, block_size=8192):
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self):
        read, size = self.filelike.read, self.block_size
        while True:
            data = read(size)
            if not data:
                return
            yield data

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def sendable(self):
        """(fd, offset, size) of the rest of a regular file, or None (iterate)."""
        try:
            fd = self.filelike.fileno()
            st = os.fstat(fd)
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        tell = getattr(self.filelike, "tell", None)
        try:
            offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
        except (OSError, ValueError):
            return None
        return fd, offset, max(0, st.st_size - offset)


def send_file(sock, fd, offset, count):
    """Sends `count` bytes of file `fd` from `offset` with os.sendfile; returns how
    many went out (fewer if the file ended early)."""
    out = sock.fileno()
    sent = 0
    try:
        while sent < count:
            n = os.sendfile(out, fd, offset + sent, count - sent)
            if n == 0:
                break
            sent += n
    except OSError as e:
        raise ClientGone(e)
    return sent
