"""The HTTP routes, one router per resource; ``deps.py`` holds what they share (the caller, roles, the
store, Redis and settings)."""
