"""Run the C{tlsecho} command as C{python -m tlsecho}."""

from ._cli import main

main()
