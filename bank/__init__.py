"""paynet bank node."""
