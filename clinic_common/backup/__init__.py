"""Encrypted backups shared by the room and the hub: age keys, and the sealed archive (a tar with a
manifest of SHA-256 hashes, encrypted to an age recipient) both write and read."""
