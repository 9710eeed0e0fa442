"""The on-device agent and the host's client for it.

Everything the agent imports (``wire``, ``links``, ``server`` and the numpy-only parts of
``hwnas.measure``) needs nothing but the standard library, numpy, one runtime and, for a
serial line, pyserial; ``hwnas agent bundle`` packs exactly those files into one
``hwnas-agent.pyz`` to copy to a phone or a board.
"""
