"""SIGTERM / SIGINT: stop at once when idle, after the current request when busy.

The other modules read ``shutdown.stop`` (a response sent while stopping carries
``Connection: close``) and the server loop sets ``shutdown.busy`` around each
request, so the handler knows whether it may leave at once.
"""

import signal

busy = False
stop = False


class Stop(BaseException):
    """Raised by the signal handler to leave an idle wait."""


def _on_signal(signum, frame):
    global stop
    stop = True
    if not busy:
        raise Stop()


def install():
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
