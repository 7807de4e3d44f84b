"""dialsim.mail."""
