"""The playout's playlist bookkeeping and host switching, driven directly (no clock, no database)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from halobuzz.config import MediaSettings, Settings
from halobuzz.core.kv import MemoryStore
from halobuzz.core.storage import LocalStorage
from halobuzz.media import radio


def _playout(tmp_path: Path) -> radio.Playout:
    media = MediaSettings(hls_dir=tmp_path / "hls", audio_ladder="32k,64k", segment_seconds=2, radio_list_size=3)
    settings = Settings(data_dir=tmp_path / "var", media=media)
    rt: Any = SimpleNamespace(settings=settings, storage=LocalStorage(tmp_path / "store"), kv=MemoryStore())
    return radio.Playout(rt)


def _header(text: str, tag: str) -> int:
    return int(next(x for x in text.splitlines() if x.startswith(tag + ":")).split(":")[1])


async def test_window_slides_with_discontinuity_sequence(tmp_path: Path) -> None:
    playout = _playout(tmp_path)
    state = playout._open(uuid.uuid4())
    for i in range(6):
        state.pending_disc = i in (0, 2, 4)
        await playout._emit(state, 2.04, [b"G" * 188, b"G" * 376])
    text = (state.out_dir / "a64k" / "index.m3u8").read_text()
    assert _header(text, "#EXT-X-MEDIA-SEQUENCE") == 3
    # Segments 0 and 2 carried discontinuities and left the window; 4 still shows its tag.
    assert _header(text, "#EXT-X-DISCONTINUITY-SEQUENCE") == 2
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert _header(text, "#EXT-X-TARGETDURATION") == 3
    assert [x for x in text.splitlines() if x.endswith(".ts")] == ["seg_000003.ts", "seg_000004.ts", "seg_000005.ts"]
    assert (state.out_dir / "a32k" / "seg_000005.ts").read_bytes() == b"G" * 188
    master = (state.out_dir / "master.m3u8").read_text()
    assert "a32k/index.m3u8" in master and 'CODECS="mp4a.40.2"' in master


def _host_playlist(base: Path, numbers: list[int]) -> None:
    for name in ("a32k", "a64k"):
        (base / name).mkdir(parents=True, exist_ok=True)
        lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:2"]
        for n in numbers:
            (base / name / f"seg_{n:05d}.ts").write_bytes(f"{name}-{n}".encode())
            lines += ["#EXTINF:2.000,", f"seg_{n:05d}.ts"]
        (base / name / "index.m3u8").write_text("\n".join(lines) + "\n")


async def test_host_joins_at_live_edge_and_resumes_after_a_stall(tmp_path: Path) -> None:
    playout = _playout(tmp_path)
    state = playout._open(uuid.uuid4())
    stream_id = uuid.uuid4()
    base = tmp_path / "hls" / str(stream_id)
    _host_playlist(base, [0, 1, 2])
    state.host = radio.HostInfo(uuid.uuid4(), "Morning", uuid.uuid4(), stream_id)
    await playout._advance(state)
    assert state.mode == "host" and state.now_playing is not None and state.now_playing["kind"] == "show"
    assert (state.out_dir / "a64k" / "seg_000000.ts").read_bytes() == b"a64k-2"  # the live edge
    assert state.host_next == 3
    # The host writes nothing for a while: the channel leaves it (silent: no tracks) ...
    state.host_last_new = time.monotonic() - 60
    await playout._advance(state)
    assert state.mode is None and state.host_resume == (stream_id, 3)
    await playout._advance(state)
    assert state.mode is None  # still nothing new
    # ... and takes it back from what it wrote since, after a discontinuity.
    _host_playlist(base, [0, 1, 2, 3, 4])
    await playout._advance(state)
    assert state.mode == "host" and state.seq == 3
    text = (state.out_dir / "a32k" / "index.m3u8").read_text()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2
    assert (state.out_dir / "a32k" / "seg_000002.ts").read_bytes() == b"a32k-4"


def test_host_segments_parse_discontinuities() -> None:
    text = "#EXTM3U\n#EXTINF:2.0,\nseg_00007.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nseg_00008.ts\n"
    assert radio.host_segments(text) == [(7, 2.0, "seg_00007.ts", False), (8, 1.5, "seg_00008.ts", True)]
