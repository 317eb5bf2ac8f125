"""Back up a room's state and restore it onto a fresh install (`clinic-edge backup`, `restore`)."""
