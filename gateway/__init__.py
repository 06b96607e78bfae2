"""paynet gateway node."""
