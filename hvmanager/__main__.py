"""``python -m hvmanager`` starts the GUI."""

import sys

from hvmanager.ui.app import main

sys.exit(main())
