"""The contract between the model toolchain (``export``), the room (``edge``) and the hub (``hub``).

One set of typed models and shared facts, written and read by the same code: the product's classes,
the audio rate, the model manifest, the model pack's index, the TensorRT engine sidecar, the wire
payloads (summaries, events, status) and temperature scaling. Nothing here does I/O beyond hashing
files; every side imports this package and nothing in it imports any side.
"""
