"""Signal features shared by the room runtime (``edge``) and the model toolchain (``export``).

Pure numpy/scipy, no I/O: what a model is trained on must be computed the same way in the room.
"""
