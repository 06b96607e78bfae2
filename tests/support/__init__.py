"""What tests share to start and drive a paynet network.

:mod:`tests.support.network` writes network files and starts, checks and
stops networks of node processes; :mod:`tests.support.ports` keeps parallel
workers' ports apart; :mod:`tests.support.parallel` groups tests for
pytest-xdist and carries the terminal summary from workers to the controller.
"""

from .network import (
    RunningNetwork,
    launch_node,
    make_pki,
    start_network,
    start_nodes,
    stop,
    write_network,
)

__all__ = [
    "RunningNetwork",
    "launch_node",
    "make_pki",
    "start_network",
    "start_nodes",
    "stop",
    "write_network",
]
