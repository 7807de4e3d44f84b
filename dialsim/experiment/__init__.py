"""dialsim.experiment."""
