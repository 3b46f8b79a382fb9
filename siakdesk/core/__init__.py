"""Domain logic without Qt: the meeting session, signaling, protocol."""
