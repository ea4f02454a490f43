"""``python -m modelport.testing PLUGIN [FORMAT]``: run the conformance kit and print its report."""

import sys

from modelport.testing.kit import main

sys.exit(main())
