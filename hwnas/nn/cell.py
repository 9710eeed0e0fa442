"""NAS-Bench-201's cell, wired once: four nodes, node ``to`` the sum of one operation on each
earlier node, the six edges in arch-string order. The space, the network and the supernet
all take the wiring from here (no torch is imported: the space uses it to parse)."""

from __future__ import annotations

from typing import Any, Callable

EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to node, from node) of the 6 edges, in arch-string order."""
NODES = 4


def wire_cell(x: Any, edge: Callable[[int, Any], Any], zeros: Callable[[Any], Any] | None = None) -> Any:
    """The cell's output for input ``x``: ``edge(k, node)`` applies edge ``k`` to a node, or
    returns None for an edge that computes nothing (then a node with no incoming value is
    ``zeros(x)``)."""
    nodes = [x]
    for to in range(1, NODES):
        incoming = [v for v in (edge(k, nodes[frm]) for k, (t, frm) in enumerate(EDGES) if t == to)
                    if v is not None]
        if not incoming:
            if zeros is None:
                raise ValueError(f"node {to} has no incoming value and no zeros() was given")
            nodes.append(zeros(x))
            continue
        total = incoming[0]
        for value in incoming[1:]:
            total = total + value
        nodes.append(total)
    return nodes[-1]
