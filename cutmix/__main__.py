"""``python -m cutmix`` (and ``torchrun -m cutmix train ...``) runs the command-line tool."""

from cutmix.cli import main

raise SystemExit(main())
