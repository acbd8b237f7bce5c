"""python-socketio's room manager with an index of each connection's rooms.

The stock manager finds a disconnecting connection's rooms by scanning (and copying) every room of
the namespace, and each connection has a room of its own, so a disconnect costs O(connections)
and a mass disconnect (a load balancer restart, a client network drop) O(connections²): 10,000
connections kept one core busy for seconds. Here each connection's rooms are indexed, so a
disconnect touches only its own rooms. Stream and user rooms live in the gateway (``Gateway.rooms``);
this manager only holds what python-socketio itself needs (the namespace and per-connection rooms).
"""

from __future__ import annotations

from typing import Any

import socketio


class IndexedManager(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        # The rest mirrors the parent, which would scan every room of the namespace first.
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]
