"""Media plane: RTMP ingest callbacks, ffmpeg HLS ladders, signed playback (docs/media.md)."""
