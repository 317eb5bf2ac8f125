"""From frames and samples to per-window results: the frame analyser, the windower and the
summariser that runs the channels, fusion, disparity and explanations on each window. The types they
exchange are in :mod:`edge.results`."""
