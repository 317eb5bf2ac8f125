"""The words channel: emotion of what is said, from the transcript held in memory."""
