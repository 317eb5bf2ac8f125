"""Whose voice is it: the client's, an enrolled staff member's, or unknown. Staff speech is removed
from a window's audio before any channel reads it."""
