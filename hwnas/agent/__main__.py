import sys

from hwnas.agent.server import main

sys.exit(main())
