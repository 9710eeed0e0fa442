"""NAS-Bench-201's cell, wired once: four nodes, node ``to`` the sum of one operation on each
earlier node, the six edges in arch-string order. The space, the network and the supernet
all take the wiring from here (no torch is imported: the space uses it to parse)."""

from __future__ import annotations

from typing import Any, Callable

EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to node, from node) of the 6 edges, in arch-string order."""
NODES = 4


def wire_cell(x: Any, edge: Callable[[int, Any], Any]) -> Any:
    """The cell's output for input ``x``: ``edge(k, node)`` applies edge ``k`` to a node."""
    nodes = [x]
    for to in range(1, NODES):
        incoming = [edge(k, nodes[frm]) for k, (t, frm) in enumerate(EDGES) if t == to]
        total = incoming[0]
        for value in incoming[1:]:
            total = total + value
        nodes.append(total)
    return nodes[-1]
