"""``python -m portable_deblur.handoff``: see ``bundle.main``."""
import sys

from portable_deblur.handoff.bundle import main

sys.exit(main())
