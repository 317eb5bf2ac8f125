"""Technician's tools: room calibration (``calibration.room``) and, in ``calibration/int8/``, the
INT8 calibration data of the models. See calibration/README.md."""
