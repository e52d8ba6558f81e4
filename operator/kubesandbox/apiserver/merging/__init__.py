"""How a change combines with an object: JSON/merge patches, strategic merge, server-side apply."""
