"""``python -m opd_fallback`` runs the same CLI as ``opd-fallback``."""

from opd_fallback.cli import main

if __name__ == "__main__":
    main()
