"""The interactive shell: kubectl verbs (``get pods -o wide``, ``exec web-x -- curl ...``) and,
as in Mininet's CLI, ``<pod-or-node> <command>`` to run a command there."""
from __future__ import annotations

import cmd
import shlex
from typing import TextIO

from emulator.errors import K8semuError


class Shell(cmd.Cmd):
    intro = ("k8semu shell: kubectl-like verbs (get pods -o wide, exec POD -- CMD, apply -f FILE, "
             "scale deployment/NAME --replicas N, flows NODE),\n"
             "or '<pod-or-node> <command>' as in Mininet. 'help' lists commands; "
             "'exit' or Ctrl-D leaves (and takes the cluster down).")
    prompt = "k8semu> "

    def __init__(self, out: TextIO, err: TextIO, client) -> None:
        super().__init__(stdout=out)
        self.out, self.err, self.client = out, err, client

    def run_line(self, line: str) -> int:
        from emulator.cli.main import build_parser, dispatch, parse, verbs
        from emulator.cli import objects
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
            if words[0] in verbs():
                try:
                    args = parse(build_parser(), words)
                except SystemExit:
                    return 2
                args.cluster = args.cluster or self.client.run.name  # this shell's cluster
                return dispatch(args, self.out, self.err, in_shell=True)
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
