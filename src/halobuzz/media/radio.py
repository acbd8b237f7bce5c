"""Radio playout: one continuous live HLS output per channel (the AAC ladder and a master playlist).

The output is written under ``<MEDIA_HLS_DIR>/radio/<channel>/``: ``master.m3u8`` and per rendition
``index.m3u8`` + ``seg_NNNNNN.ts`` numbered continuously for the channel's life. Its segments come
from two sources, switched without re-encoding:

- **auto-DJ**: the channel's tracks in playlist order, looping; each track was cut into segments
  of every rendition once, at upload (``radio_service.prepare_track``). Segments are released in
  real time (a lead of two segments), so the CPU cost is a file copy per segment.
- **host**: while a scheduled show runs and its host's linked audio stream is live, the segments
  the transcoder writes for that stream (the same AAC ladder) are taken over as they appear.

Every switch (track to track, auto-DJ to host and back, a restart) is marked with
``#EXT-X-DISCONTINUITY`` and counted in ``#EXT-X-DISCONTINUITY-SEQUENCE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from halobuzz.core.clock import utcnow
from halobuzz.core.runtime import Runtime
from halobuzz.core.storage import ObjectNotFound
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.media import ladder
from halobuzz.media.models import RadioChannel, RadioShow, RadioTrack
from halobuzz.media.radio_service import current_show, now_playing_key, track_segment_key
from halobuzz.media.supervisor import hls_root
from halobuzz.streams.models import Stream, StreamStatus

log = structlog.get_logger("halobuzz.media.radio")

LEAD_SEGMENTS = 2  # auto-DJ segments released ahead of the clock, so a new listener can start at once
# Tracks are re-read on a poke from this process and every this many polls (changes made through
# another instance); schedules and live states every poll.
TRACKS_EVERY_POLLS = 10
KEEP_EXTRA = 4  # segment files kept after they leave the playlist (players still fetching them)


def radio_root(rt: Runtime) -> Path:
    return hls_root(rt.settings) / "radio"


@dataclass(slots=True)
class Entry:
    seq: int
    duration: float
    discontinuity: bool


@dataclass
class TrackInfo:
    id: uuid.UUID
    title: str
    prefix: str
    segments: list[float]
    renditions: list[str]


@dataclass
class HostInfo:
    show_id: uuid.UUID
    title: str
    host_id: uuid.UUID
    stream_id: uuid.UUID


@dataclass
class ChannelState:
    id: uuid.UUID
    out_dir: Path
    renditions: list[str]
    seq: int = 0
    disc_seq: int = 0
    target: int = 1
    window: deque[Entry] = field(default_factory=deque)
    files: deque[int] = field(default_factory=deque)
    pending_disc: bool = True
    mode: str | None = None  # "dj" | "host" | None (silent)
    tracks: list[TrackInfo] = field(default_factory=list)
    track_id: uuid.UUID | None = None
    seg_index: int = 0
    next_at: float = 0.0
    host: HostInfo | None = None
    host_next: int | None = None  # the host transcoder's next segment number to take
    host_last_new: float = 0.0
    # (stream, next segment) where a stalled host was left: taken back only when it writes again.
    host_resume: tuple[uuid.UUID, int] | None = None
    now_playing: dict[str, Any] | None = None
    now_written: float = 0.0


def _seg_number(name: str) -> int | None:
    stem = name.rsplit("/", 1)[-1].removesuffix(".ts")
    _, _, digits = stem.rpartition("_")
    return int(digits) if digits.isdigit() else None


def host_segments(playlist: str) -> list[tuple[int, float, str, bool]]:
    """(number, duration, file name, discontinuity before it) of a transcoder's variant playlist."""
    out: list[tuple[int, float, str, bool]] = []
    duration, disc = 0.0, False
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0] or 0)
        elif line.startswith("#EXT-X-DISCONTINUITY") and not line.startswith("#EXT-X-DISCONTINUITY-"):
            disc = True
        elif line and not line.startswith("#"):
            number = _seg_number(line)
            if number is not None:
                out.append((number, duration, line, disc))
            disc = False
    return out


class Playout:
    """The radio channels' playout of one media host (``MediaPlane.radio``)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.media = rt.settings.media
        self.root = radio_root(rt)
        self.renditions = [r.name for r in ladder.parse_audio_ladder(self.media.audio_ladder)]
        self.seg_seconds = ladder.segment_seconds(self.media)
        self.channels: dict[uuid.UUID, ChannelState] = {}
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_refresh = 0.0
        self.tracks_loaded_at = 0.0
        self.tracks_stale = True

    def start(self) -> None:
        if self.task is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self.task = asyncio.create_task(self._loop(), name="radio-playout")

    def poke(self) -> None:
        """A stream went live or off air, or a channel changed here: re-read everything now."""
        self.last_refresh = 0.0
        self.tracks_stale = True
        self.wake.set()

    async def close(self) -> None:
        if self.task is not None:
            await cancel_and_wait([self.task])
            self.task = None
        for state in self.channels.values():
            self._save(state)

    async def _loop(self) -> None:
        while True:
            try:
                if time.monotonic() - self.last_refresh >= self.media.radio_poll_seconds:
                    self.last_refresh = time.monotonic()
                    await self._refresh()
                for state in list(self.channels.values()):
                    await self._advance(state)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("radio.playout_failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(0.5, self.seg_seconds / 4))

    # ------------------------------------------------------------------------------ schedule

    async def _refresh(self) -> None:
        """Channels, their tracks, the running show and whether its host is live."""
        now = utcnow()
        async with self.rt.db.session(write=False) as session:
            channels = list(await session.scalars(select(RadioChannel).where(RadioChannel.deleted_at.is_(None))))
            ids = [c.id for c in channels]
            tracks: dict[uuid.UUID, list[TrackInfo]] = {i: [] for i in ids}
            shows: dict[uuid.UUID, list[RadioShow]] = {i: [] for i in ids}
            if ids:
                reload = self.tracks_stale or set(ids) - set(self.channels)
                if (
                    reload
                    or time.monotonic() - self.tracks_loaded_at >= TRACKS_EVERY_POLLS * self.media.radio_poll_seconds
                ):
                    self.tracks_loaded_at = time.monotonic()
                    self.tracks_stale = False
                    loaded = await self._load_tracks(session, ids)
                    tracks.update(loaded)
                else:
                    tracks = {i: self.channels[i].tracks for i in ids}
                for s in await session.scalars(select(RadioShow).where(RadioShow.channel_id.in_(ids))):
                    shows[s.channel_id].append(s)
            running = {c.id: current_show(shows[c.id], now, c.timezone) for c in channels}
            stream_ids = [s.stream_id for s in running.values() if s is not None]
            live: set[uuid.UUID] = set()
            if stream_ids:
                rows = await session.scalars(
                    select(Stream.id).where(Stream.id.in_(stream_ids), Stream.status == StreamStatus.LIVE)
                )
                live = set(rows)
        for gone in set(self.channels) - set(ids):
            state = self.channels.pop(gone)
            await asyncio.to_thread(shutil.rmtree, state.out_dir, True)
        for channel in channels:
            state = self.channels.get(channel.id) or self._open(channel.id)
            state.tracks = tracks[channel.id]
            show = running[channel.id]
            state.host = (
                HostInfo(show.id, show.title, show.host_id, show.stream_id)
                if show is not None and show.stream_id in live
                else None
            )
            if state.host is None:
                state.host_resume = None  # a new broadcast numbers its segments afresh

    async def _load_tracks(self, session: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TrackInfo]]:
        out: dict[uuid.UUID, list[TrackInfo]] = {i: [] for i in ids}
        query = select(RadioTrack).where(RadioTrack.channel_id.in_(ids))
        for t in await session.scalars(query.order_by(RadioTrack.position, RadioTrack.id)):
            if list(t.renditions) == self.renditions:  # tracks cut for another MEDIA_AUDIO_LADDER are skipped
                out[t.channel_id].append(
                    TrackInfo(t.id, t.title, t.storage_prefix, [float(d) for d in t.segments], self.renditions)
                )
        return out

    def _open(self, channel_id: uuid.UUID) -> ChannelState:
        out = self.root / str(channel_id)
        state = ChannelState(channel_id, out, self.renditions, target=self.seg_seconds)
        saved = out / "state.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(saved.read_text())
            state.seq, state.disc_seq = int(data["seq"]), int(data["disc_seq"]) + 1
            state.target = max(state.target, int(data["target"]))
            state.track_id = uuid.UUID(data["track_id"]) if data.get("track_id") else None
            state.seg_index = int(data.get("seg_index", 0))
        for name in self.renditions:
            (out / name).mkdir(parents=True, exist_ok=True)
        master = ladder.master_playlist(None, ladder.parse_audio_ladder(self.media.audio_ladder))
        _write(out / "master.m3u8", master.encode())
        self.channels[channel_id] = state
        return state

    def _save(self, state: ChannelState) -> None:
        data = {"seq": state.seq, "disc_seq": state.disc_seq, "target": state.target,
                "track_id": str(state.track_id) if state.track_id else None, "seg_index": state.seg_index}  # fmt: skip
        with contextlib.suppress(OSError):
            _write(state.out_dir / "state.json", json.dumps(data).encode())

    # ------------------------------------------------------------------------------- advance

    async def _host_listing(self, stream_id: uuid.UUID) -> list[tuple[int, float, str, bool]]:
        playlist = hls_root(self.rt.settings) / str(stream_id) / self.renditions[0] / "index.m3u8"
        try:
            return host_segments(await asyncio.to_thread(playlist.read_text))
        except OSError:
            return []

    async def _host_ready(self, state: ChannelState) -> bool:
        """Whether the channel should carry its live host now (not while the host writes nothing)."""
        host = state.host
        if host is None:
            return False
        if state.mode == "host":
            if time.monotonic() - state.host_last_new < max(10.0, 3.0 * self.seg_seconds):
                return True
            state.host_resume = (host.stream_id, state.host_next or 0)
            log.info("radio.host_stalled", channel=str(state.id), stream=str(host.stream_id))
            return False
        resume = state.host_resume
        if resume is None or resume[0] != host.stream_id:
            return True
        listing = await self._host_listing(host.stream_id)
        return bool(listing) and listing[-1][0] >= resume[1]

    async def _advance(self, state: ChannelState) -> None:
        if await self._host_ready(state):
            if state.mode != "host":
                self._switch(state, "host")
            await self._advance_host(state)
        elif state.tracks:
            if state.mode != "dj":
                self._switch(state, "dj")
            await self._advance_dj(state)
        elif state.mode is not None:
            self._switch(state, None)
        await self._publish_now(state)

    def _switch(self, state: ChannelState, mode: str | None) -> None:
        log.info("radio.switch", channel=str(state.id), mode=mode, previous=state.mode)
        state.mode = mode
        state.pending_disc = True
        state.host_next = None
        state.host_last_new = time.monotonic()
        state.next_at = time.monotonic()
        state.now_playing = None

    async def _advance_dj(self, state: ChannelState) -> None:
        lead = LEAD_SEGMENTS * self.seg_seconds
        state.next_at = max(state.next_at, time.monotonic() - lead)  # after a stall: no burst
        while state.next_at <= time.monotonic() + lead:
            index = next((i for i, t in enumerate(state.tracks) if t.id == state.track_id), None)
            if index is None:
                index, state.seg_index = 0, 0
                state.pending_disc = True
            track = state.tracks[index]
            if state.seg_index >= len(track.segments):
                track = state.tracks[(index + 1) % len(state.tracks)]
                state.seg_index = 0
                state.pending_disc = True
            state.track_id = track.id
            i = state.seg_index
            try:
                blobs = [await self.rt.storage.get(track_segment_key(track.prefix, r, i)) for r in self.renditions]
            except ObjectNotFound:
                log.warning("radio.segment_missing", channel=str(state.id), track=str(track.id), index=i)
                state.seg_index = len(track.segments)
                continue
            if i == 0 or state.now_playing is None:
                state.now_playing = {"kind": "track", "track_id": str(track.id), "title": track.title,
                                     "started_at": utcnow().isoformat()}  # fmt: skip
                state.now_written = 0.0
            await self._emit(state, track.segments[i], blobs)
            state.seg_index += 1
            state.next_at += track.segments[i]

    async def _advance_host(self, state: ChannelState) -> None:
        host = state.host
        assert host is not None
        base = hls_root(self.rt.settings) / str(host.stream_id)
        listing = await self._host_listing(host.stream_id)
        if not listing:
            return
        if state.host_next is None:
            resume = state.host_resume
            state.host_resume = None
            if resume is not None and resume[0] == host.stream_id and listing[0][0] <= resume[1]:
                state.host_next = resume[1]  # back after a stall: what the host wrote since
            else:
                state.host_next = listing[-1][0]  # join at the live edge
            state.now_playing = {"kind": "show", "show_id": str(host.show_id), "title": host.title,
                                 "host_id": str(host.host_id), "stream_id": str(host.stream_id),
                                 "started_at": utcnow().isoformat()}  # fmt: skip
            state.now_written = 0.0
        for number, duration, name, disc in listing:
            if number < state.host_next:
                continue
            paths = [base / r / name for r in self.renditions]
            if not all(p.is_file() for p in paths):
                break
            try:
                blobs = [await asyncio.to_thread(p.read_bytes) for p in paths]
            except OSError:
                break
            if disc:
                state.pending_disc = True
            await self._emit(state, duration, blobs)
            state.host_next = number + 1
            state.host_last_new = time.monotonic()

    async def _emit(self, state: ChannelState, duration: float, blobs: list[bytes]) -> None:
        """Append one segment (every rendition) to the channel's output and rewrite its playlists."""
        seq = state.seq
        name = f"seg_{seq:06d}.ts"

        def write_all() -> None:
            for rendition, data in zip(self.renditions, blobs, strict=True):
                _write(state.out_dir / rendition / name, data)

        await asyncio.to_thread(write_all)
        state.window.append(Entry(seq, duration, state.pending_disc))
        state.files.append(seq)
        state.pending_disc = False
        state.seq += 1
        state.target = max(state.target, math.ceil(duration))
        while len(state.window) > self.media.radio_list_size:
            if state.window.popleft().discontinuity:
                state.disc_seq += 1
        old: list[int] = []
        while len(state.files) > self.media.radio_list_size + KEEP_EXTRA:
            old.append(state.files.popleft())
        text = self._playlist(state).encode()

        def publish() -> None:
            for rendition in self.renditions:
                _write(state.out_dir / rendition / "index.m3u8", text)
                for n in old:
                    (state.out_dir / rendition / f"seg_{n:06d}.ts").unlink(missing_ok=True)

        await asyncio.to_thread(publish)
        if seq % 10 == 0:
            self._save(state)

    def _playlist(self, state: ChannelState) -> str:
        first = state.window[0].seq if state.window else state.seq
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{state.target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{state.disc_seq}",
                 "#EXT-X-INDEPENDENT-SEGMENTS"]  # fmt: skip
        for e in state.window:
            if e.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{e.duration:.3f},")
            lines.append(f"seg_{e.seq:06d}.ts")
        return "\n".join(lines) + "\n"

    async def _publish_now(self, state: ChannelState) -> None:
        """What the channel plays, in the shared store for every API instance (refreshed while it runs)."""
        if time.monotonic() - state.now_written < self.media.radio_poll_seconds * 2:
            return
        state.now_written = time.monotonic()
        ttl = int(self.media.radio_poll_seconds * 6) + 5
        if state.now_playing is None:
            await self.rt.kv.delete(now_playing_key(state.id))
        else:
            await self.rt.kv.set(now_playing_key(state.id), json.dumps(state.now_playing), ttl)


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file renamed into place (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
