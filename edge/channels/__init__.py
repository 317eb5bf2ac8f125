"""The room's channels beyond the face: voice, words and pulse, and their late fusion.

Each channel turns one window's in-memory media into a typed result with its own quality; none
keeps samples, pixels or text beyond the window that needs them.
"""
