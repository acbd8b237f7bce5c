"""HaloBuzz."""
