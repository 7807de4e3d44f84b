"""dialsim.scenario."""
