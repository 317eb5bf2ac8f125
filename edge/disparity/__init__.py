"""Emotional disparity: when the face, the voice and the words disagree."""
