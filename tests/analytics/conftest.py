from tests.realtime.support import live, sockets

__all__ = ["live", "sockets"]
