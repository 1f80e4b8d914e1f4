"""What the command-line tools (train, evaluate, export, the self-check) share: an argparse parser whose usage
errors are one line."""

from __future__ import annotations

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser``, except that a bad command line prints one line, ``PROG: error: argument --x:
    ... (see PROG --help)``, instead of the whole usage block before the error; the exit status is 2 as usual."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")
