"""Qt-free domain model: the per-photo result document, sessions, export."""
