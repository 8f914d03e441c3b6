"""``python -m emulator`` is the same as the ``k8semu`` command."""
import sys

from emulator.cli.main import main

sys.exit(main())
