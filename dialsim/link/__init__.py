"""dialsim.link."""
