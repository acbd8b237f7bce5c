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


# RFC 6381 codec strings: H.264 profile_idc + constraint flags + level, AAC object types.
_AVC_PROFILES = {"baseline": "42", "constrained baseline": "42", "main": "4d", "high": "64"}
_AVC_CONSTRAINTS = {"constrained baseline": "e0", "baseline": "00", "main": "40", "high": "00"}
LADDER_VIDEO_CODEC = "avc1.4d401f"  # Main, level 3.1: what the lower renditions are encoded as
AAC_LC = "mp4a.40.2"


def avc_codec(profile: str | None, level: int | None) -> str:
    """``avc1.PPCCLL`` for an ffprobe profile name and level (Main 3.1 when unknown)."""
    name = (profile or "").strip().lower()
    if name not in _AVC_PROFILES or not level or level <= 0:
        return LADDER_VIDEO_CODEC
    return f"avc1.{_AVC_PROFILES[name]}{_AVC_CONSTRAINTS[name]}{level:02x}"


def audio_codec(codec_name: str | None, profile: str | None) -> str:
    """The CODECS entry of a source audio track: AAC-LC, HE-AAC (v2) or MP3."""
    if codec_name == "mp3":
        return "mp4a.40.34"
    p = (profile or "").upper()
    if "HE-AACV2" in p:
        return "mp4a.40.29"
    if "HE-AAC" in p:
        return "mp4a.40.5"
    return AAC_LC


def video_command(
    media: MediaSettings,
    source: str,
    out_dir: Path,
    *,
    src_width: int,
    src_height: int,
    src_kbps: int,
    resume: bool = False,
    has_audio: bool = True,
) -> tuple[list[str], list[tuple[Rendition, str]]]:
    """ffmpeg argv for the source copy + lower renditions, and each variant's (rendition, RESOLUTION).

    ``resume`` appends to the playlists of an earlier run of the same broadcast (after a reconnect
    or a crash) with a discontinuity, so players and the recording see one continuous event."""
    seg = segment_seconds(media)
    lower = [r for r in parse_ladder(media.ladder) if r.height is not None and r.height < src_height]
    variants: list[tuple[Rendition, str]] = [(Rendition("source", None, src_kbps, 128), f"{src_width}x{src_height}")]
    for r in lower:
        assert r.height is not None
        width = round(src_width * r.height / src_height / 2) * 2
        variants.append((r, f"{width}x{r.height}"))
    argv = [media.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    argv += ["-rw_timeout", "15000000", "-i", source]
    n = len(lower)
    if n:
        split = f"[0:v]split={n}" + "".join(f"[v{i}]" for i in range(n)) + ";"
        split += ";".join(f"[v{i}]scale=-2:{r.height},format=yuv420p[v{i}o]" for i, r in enumerate(lower))
        argv += ["-filter_complex", split]
    # variant 0: the source, passed through
    audio_map = ["-map", "0:a:0"] if has_audio else []
    argv += ["-map", "0:v:0", *audio_map]
    for i in range(n):
        argv += ["-map", f"[v{i}o]", *audio_map]
    argv += ["-c:v:0", "copy"] + (["-c:a:0", "copy"] if has_audio else [])
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
            f"-level:v:{i}",
            "3.1",
        ]
        if has_audio:
            argv += aac_args(i, r.audio_kbps, media)
    argv += ["-g", str(30 * seg), "-sc_threshold", "0", "-force_key_frames", f"expr:gte(t,n_forced*{seg})"]
    audio_ref = ",a:{i}" if has_audio else ""
    streams = " ".join(f"v:{i}{audio_ref.format(i=i)},name:{v[0].name}" for i, v in enumerate(variants))
    argv += _hls_tail(seg, out_dir, streams, resume=resume)
    return argv, variants


def aac_args(index: int, kbps: int, media: MediaSettings) -> list[str]:
    """Encoder options of one AAC rendition (``MEDIA_AAC_CODER``: ``fast`` costs far less CPU than
    ffmpeg's default two-loop search, at a small quality cost at these bitrates)."""
    return [f"-c:a:{index}", "aac", f"-b:a:{index}", f"{kbps}k", f"-aac_coder:a:{index}", media.aac_coder]


def audio_command(
    media: MediaSettings, source: str, out_dir: Path, *, resume: bool = False
) -> tuple[list[str], list[Rendition]]:
    """ffmpeg argv for the AAC ladder of an audio-only stream or radio channel."""
    seg = segment_seconds(media)
    ladder = parse_audio_ladder(media.audio_ladder)
    argv = [media.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1"]
    argv += ["-rw_timeout", "15000000", "-i", source]
    for _ in ladder:
        argv += ["-map", "0:a:0"]
    for i, r in enumerate(ladder):
        argv += aac_args(i, r.audio_kbps, media)
    argv += ["-ar", "48000", "-ac", "2"]
    streams = " ".join(f"a:{i},name:{r.name}" for i, r in enumerate(ladder))
    return argv + _hls_tail(seg, out_dir, streams, resume=resume), ladder


def _hls_tail(seg: int, out_dir: Path, streams: str, *, resume: bool) -> list[str]:
    # omit_endlist: an input that ends (the publisher dropped) must not end the event for players;
    # the recording closes its copy. append_list continues the numbering of an earlier run.
    flags = "independent_segments+program_date_time+omit_endlist+append_list+temp_file"
    if resume:
        flags += "+discont_start"
    return [
        "-f", "hls", "-hls_time", str(seg), "-hls_list_size", "0", "-hls_playlist_type", "event",
        "-hls_flags", flags,
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts"),
        "-var_stream_map", streams, str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip


def master_playlist(
    video: list[tuple[Rendition, str]] | None,
    audio: list[Rendition] | None,
    *,
    source_codecs: str = f"{LADDER_VIDEO_CODEC},{AAC_LC}",
    has_audio: bool = True,
) -> str:
    """The HLS master playlist with BANDWIDTH, RESOLUTION and CODECS for each variant (the source
    variant carries the publisher's own codecs, the encoded ones Main 3.1 + AAC-LC)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r, resolution in video or []:
        bandwidth = (r.video_kbps + (r.audio_kbps if has_audio else 0)) * 1100
        codecs = (
            source_codecs
            if r.height is None
            else (f"{LADDER_VIDEO_CODEC},{AAC_LC}" if has_audio else LADDER_VIDEO_CODEC)
        )
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={resolution},CODECS="{codecs}"')
        lines.append(f"{r.name}/index.m3u8")
    for r in audio or []:
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={r.audio_kbps * 1100},CODECS="{AAC_LC}"')
        lines.append(f"{r.name}/index.m3u8")
    return "\n".join(lines) + "\n"


def clean_playlist(text: str) -> str:
    """A variant playlist as players should see it: ffmpeg's append mode can repeat
    ``#EXT-X-DISCONTINUITY`` ahead of the first segment, where it means nothing."""
    head, sep, rest = text.partition("#EXTINF")
    if "#EXT-X-DISCONTINUITY\n" not in head:
        return text
    head = "".join(line for line in head.splitlines(keepends=True) if line.strip() != "#EXT-X-DISCONTINUITY")
    return head + sep + rest


def playlist_seconds(text: str) -> float:
    """The summed EXTINF durations of a media playlist."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            try:
                total += float(line[8:].split(",", 1)[0])
            except ValueError:
                continue
    return total
