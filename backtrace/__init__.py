"""Stack walker, symbolizer and stitched trap reports (not built yet)."""
