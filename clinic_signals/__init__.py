"""Signal features shared by the room runtime (``edge``) and the model toolchain (``export``).

Pure numpy, no I/O: what a model is trained on must be computed the same way in the room. The room
process never imports SciPy (about 60 MiB resident for three filters; ``filters`` says why); the
toolchain's calibration (``temperature``) does.
"""
