"""Media without Qt: synthetic and file sources, recording, frame identification."""
