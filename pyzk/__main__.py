"""``python -m pyzk ...`` is ``zkServer.py ...`` (how ``start`` launches the server)."""

from pyzk.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
