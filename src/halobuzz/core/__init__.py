"""Cross-cutting infrastructure shared by every domain."""
