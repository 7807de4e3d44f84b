"""dialsim.hosts."""
