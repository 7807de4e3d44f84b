"""dialsim.drivers."""
