"""Explanations of a window: where on the face, when in the voice, which words."""
