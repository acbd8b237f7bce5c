"""Event consumers of the media plane (registered when the relay loads its consumer modules)."""

from __future__ import annotations

from halobuzz.core import events
from halobuzz.core.runtime import Runtime
from halobuzz.media.radio_service import TRACK_DELETED
from halobuzz.media.service import RECORDING_DELETED


@events.consumer(RECORDING_DELETED, name="media.purge_recording")
async def purge_recording(runtime: Runtime, event: events.Event) -> None:
    """Remove a deleted recording's objects from storage (deleting what is gone already is fine)."""
    prefix = str(event.data["prefix"])
    for rel in event.data.get("files", []):
        await runtime.storage.delete(f"{prefix}/{rel}")


@events.consumer(TRACK_DELETED, name="media.purge_radio_track")
async def purge_radio_track(runtime: Runtime, event: events.Event) -> None:
    """Remove a deleted radio track's segments from storage."""
    prefix = str(event.data["prefix"])
    for rel in event.data.get("files", []):
        await runtime.storage.delete(f"{prefix}/{rel}")
