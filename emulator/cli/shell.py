"""The interactive shell: kubectl verbs (``get pods -o wide``, ``exec web-x -- curl ...``) and,
as in Mininet's CLI, ``<pod-or-node> <command>`` to run a command there."""
from __future__ import annotations

import cmd
import shlex
from typing import Callable, Collection, TextIO

from emulator.cli import objects
from emulator.client import Client
from emulator.errors import K8semuError


class Shell(cmd.Cmd):
    intro = ("k8semu shell: kubectl-like verbs (get pods -o wide, exec POD -- CMD, apply -f FILE, "
             "scale deployment/NAME --replicas N, flows NODE),\n"
             "or '<pod-or-node> <command>' as in Mininet. 'help' lists commands; "
             "'exit' or Ctrl-D leaves (and takes the cluster down).")
    prompt = "k8semu> "

    def __init__(self, out: TextIO, err: TextIO, client: Client, verbs: Collection[str],
                 run_verb: Callable[[list[str]], int]) -> None:
        """``run_verb`` runs one of ``verbs`` from its words (the CLI's parser and dispatcher)."""
        super().__init__(stdout=out)
        self.out, self.err, self.client = out, err, client
        self.verbs, self.run_verb = set(verbs), run_verb

    def run_line(self, line: str) -> int:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.err.write(f"error: {exc}\n")
            return 2
        if not words:
            return 0
        if words[0] == "kubectl" and len(words) > 1:
            words = words[1:]
        try:
            if words[0] in self.verbs:
                return self.run_verb(words)
            return objects.exec_(self.client, words[0], None, None, words[1:])  # Mininet style
        except K8semuError as exc:
            self.err.write(f"error: {exc}\n")
            return 1

    def default(self, line: str) -> None:
        self.run_line(line)

    def emptyline(self) -> None:
        return None

    def do_exit(self, _: str) -> bool:
        return True

    do_quit = do_exit

    def do_EOF(self, _: str) -> bool:  # noqa: N802 - cmd.Cmd's naming
        self.out.write("\n")
        return True

    def do_help(self, arg: str) -> None:
        self.out.write(self.intro + "\n")
