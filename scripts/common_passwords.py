"""Rebuild ``src/sessionward/service/common-passwords.txt.gz``: the common passwords a new
password is checked against, in frequency order, lowercased, 8 characters or longer (the
shortest password the service accepts).

Source: the list Django ships (``django/contrib/auth/common-passwords.txt.gz``, BSD licence),
itself Royce Williams' list of the most common passwords in public breach corpora
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce).

    python scripts/common_passwords.py     # needs Django installed (the test extra has it)
"""

from __future__ import annotations

import gzip
from pathlib import Path

import django

MIN_LENGTH = 8
SOURCE = Path(django.__file__).parent / "contrib" / "auth" / "common-passwords.txt.gz"
TARGET = Path(__file__).resolve().parent.parent / "src/sessionward/service/common-passwords.txt.gz"


def main() -> None:
    words = gzip.decompress(SOURCE.read_bytes()).decode("utf-8").split()
    kept = list(dict.fromkeys(w.lower() for w in words if len(w) >= MIN_LENGTH))
    # mtime=0: the same input always gives the same bytes.
    TARGET.write_bytes(gzip.compress(("\n".join(kept) + "\n").encode("utf-8"), mtime=0))
    print(f"{len(kept)} passwords of {MIN_LENGTH}+ characters -> {TARGET}")


if __name__ == "__main__":
    main()
