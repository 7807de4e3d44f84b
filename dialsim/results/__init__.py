"""dialsim.results."""
