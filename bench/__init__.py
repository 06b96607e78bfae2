"""Measurements and faults: ``make bench`` (payments/s beside bare gRPC echo
baselines, netting time, notification fan-out) and ``make chaos`` (payments
while nodes are killed and paused). Scripts, not tests; they import the core,
the services and the tools."""
