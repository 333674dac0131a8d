"""The light challenge: a server-drawn colour sequence, and whether the face in the frames reflected it."""
