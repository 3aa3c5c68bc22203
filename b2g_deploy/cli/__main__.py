"""`python -m b2g_deploy.cli ...`: the CLI without the console script (GPU scripts use it)."""

from . import main

main()
