"""``make``'s install step: ``.venv/bin/python tools/install.py -e '.[dev]'`` installs with uv as pip would
(``harness/install.py``, standard library only, imported from this checkout before anything is installed), and with
pip when uv cannot; exit 1 when pip fails too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import install  # noqa: E402  (the checkout's harness, on the path above)

if __name__ == "__main__":
    sys.exit(install.main(sys.argv[1:]))
