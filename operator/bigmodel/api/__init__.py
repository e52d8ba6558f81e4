"""pydantic models of the CRDs (spec and status) and CRD generation."""
