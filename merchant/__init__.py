"""paynet merchant node."""
