"""``python -m portable_deblur.search``: see ``run.main``."""
import sys

from portable_deblur.search.run import main

sys.exit(main())
