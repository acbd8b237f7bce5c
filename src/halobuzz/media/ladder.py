"""The ffmpeg command and HLS master playlist for one live stream's rendition ladder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halobuzz.config import MediaSettings


@dataclass(frozen=True, slots=True)
class Rendition:
    name: str
    height: int | None  # None: the source, passed through
    video_kbps: int
    audio_kbps: int


def parse_ladder(spec: str) -> list[Rendition]:
    """``"480p:1000k,360p:600k"`` → lower video renditions (the source rendition is implicit)."""
    out: list[Rendition] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        label, _, rate = part.partition(":")
        height = int(label.rstrip("p"))
        kbps = int(rate.rstrip("kK")) if rate else max(200, height * 2)
        out.append(Rendition(f"{height}p", height, kbps, 96 if height >= 480 else 64))
    return out


def parse_audio_ladder(spec: str) -> list[Rendition]:
    """``"64k,128k,256k"`` → AAC renditions."""
    rates = [int(p.strip().rstrip("kK")) for p in spec.split(",") if p.strip()]
    return [Rendition(f"a{r}k", None, 0, r) for r in rates]


def segment_seconds(media: MediaSettings) -> int:
    return 2 if media.low_latency else media.segment_seconds


def video_command(
    media: MediaSettings, source: str, out_dir: Path, *, src_width: int, src_height: int, src_kbps: int
) -> tuple[list[str], list[tuple[Rendition, str]]]:
    """ffmpeg argv for the source copy + lower renditions, and each variant's (rendition, RESOLUTION)."""
    seg = segment_seconds(media)
    lower = [r for r in parse_ladder(media.ladder) if r.height is not None and r.height < src_height]
    variants: list[tuple[Rendition, str]] = [(Rendition("source", None, src_kbps, 128), f"{src_width}x{src_height}")]
    for r in lower:
        assert r.height is not None
        width = round(src_width * r.height / src_height / 2) * 2
        variants.append((r, f"{width}x{r.height}"))
    argv = [media.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    argv += ["-i", source]
    n = len(lower)
    if n:
        split = f"[0:v]split={n}" + "".join(f"[v{i}]" for i in range(n)) + ";"
        split += ";".join(f"[v{i}]scale=-2:{r.height},format=yuv420p[v{i}o]" for i, r in enumerate(lower))
        argv += ["-filter_complex", split]
    # variant 0: the source, passed through
    argv += ["-map", "0:v:0", "-map", "0:a:0?"]
    for i in range(n):
        argv += ["-map", f"[v{i}o]", "-map", "0:a:0?"]
    argv += ["-c:v:0", "copy", "-c:a:0", "copy"]
    for i, r in enumerate(lower, start=1):
        argv += [
            f"-c:v:{i}",
            "libx264",
            f"-preset:v:{i}",
            media.x264_preset,
            f"-b:v:{i}",
            f"{r.video_kbps}k",
            f"-maxrate:v:{i}",
            f"{r.video_kbps}k",
            f"-bufsize:v:{i}",
            f"{r.video_kbps * 2}k",
            f"-profile:v:{i}",
            "main",
            f"-c:a:{i}",
            "aac",
            f"-b:a:{i}",
            f"{r.audio_kbps}k",
        ]
    argv += ["-g", str(30 * seg), "-sc_threshold", "0", "-force_key_frames", f"expr:gte(t,n_forced*{seg})"]
    streams = " ".join(f"v:{i},a:{i},name:{v[0].name}" for i, v in enumerate(variants))
    argv += _hls_tail(seg, out_dir, streams)
    return argv, variants


def audio_command(media: MediaSettings, source: str, out_dir: Path) -> tuple[list[str], list[Rendition]]:
    """ffmpeg argv for the AAC ladder of an audio-only stream or radio channel."""
    seg = segment_seconds(media)
    ladder = parse_audio_ladder(media.audio_ladder)
    argv = [media.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-i", source]
    for _ in ladder:
        argv += ["-map", "0:a:0"]
    for i, r in enumerate(ladder):
        argv += [f"-c:a:{i}", "aac", f"-b:a:{i}", f"{r.audio_kbps}k"]
    streams = " ".join(f"a:{i},name:{r.name}" for i, r in enumerate(ladder))
    return argv + _hls_tail(seg, out_dir, streams), ladder


def _hls_tail(seg: int, out_dir: Path, streams: str) -> list[str]:
    return [
        "-f", "hls", "-hls_time", str(seg), "-hls_list_size", "0", "-hls_playlist_type", "event",
        "-hls_flags", "independent_segments+program_date_time+temp_file",
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts"),
        "-var_stream_map", streams, str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip


def master_playlist(video: list[tuple[Rendition, str]] | None, audio: list[Rendition] | None) -> str:
    """The HLS master playlist with BANDWIDTH, RESOLUTION and CODECS for each variant."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r, resolution in video or []:
        bandwidth = (r.video_kbps + r.audio_kbps) * 1100
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={resolution},CODECS="avc1.4d401f,mp4a.40.2"')
        lines.append(f"{r.name}/index.m3u8")
    for r in audio or []:
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={r.audio_kbps * 1100},CODECS="mp4a.40.2"')
        lines.append(f"{r.name}/index.m3u8")
    return "\n".join(lines) + "\n"
