"""A recorded fake of kubectl, for deploy tests (no cluster can run on these machines).

Put on PATH as `kubectl` by the `fake_kubectl` fixture (tests/kube.py). Every call appends its argv
(and its stdin when it reads `-f -`) as one JSON line to $FAKE_KUBECTL_DIR/calls.jsonl, then
answers from $FAKE_KUBECTL_DIR/script.json:

    {"get": [{"stdout": "<deployment JSON>"}, {"stdout": "..."}],    # the 1st call, the 2nd, ...
     "rollout status": [{"exit": 1, "stderr": "error: timed out waiting for the condition"}],
     "port-forward": [{"forward_to": "127.0.0.1:PORT"}]}

A command's answers are used in order, the last one repeating; a command with no answers succeeds
silently. `kustomize` is passed to the real kubectl ($FAKE_KUBECTL_REAL) after being recorded, so
rendering stays real. `port-forward` prints kubectl's "Forwarding from" line and relays every
connection to `forward_to` (a server the test runs in the pod's place) until it is terminated.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from pathlib import Path

GLOBAL_FLAGS_WITH_VALUE = {"--context", "--namespace", "-n", "--kubeconfig", "--cluster", "--user"}


def command_words(argv: list[str]) -> list[str]:
    """The positional words (e.g. ['rollout', 'status', 'deployment/x']), flags and their values left out."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_FLAGS_WITH_VALUE or arg in ("--filename", "-f"):
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def command_key(argv: list[str]) -> str:
    words = command_words(argv)
    return " ".join(words[:2]) if words[:1] == ["rollout"] else (words[0] if words else "")


def relay(client: socket.socket, target: tuple[str, int]) -> None:
    with client, socket.create_connection(target) as upstream:
        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):  # either side hanging up ends the relay
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()


def port_forward(answer: dict) -> int:
    if "forward_to" not in answer:
        return respond(answer)
    host, port = answer["forward_to"].rsplit(":", 1)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> {answer.get('pod_port', 8000)}", flush=True)
        while True:
            client, _ = listener.accept()
            threading.Thread(target=relay, args=(client, (host, int(port))), daemon=True).start()


def respond(answer: dict) -> int:
    sys.stdout.write(answer.get("stdout", ""))
    sys.stderr.write(answer.get("stderr", ""))
    return int(answer.get("exit", 0))


def main(argv: list[str]) -> int:
    folder = Path(os.environ["FAKE_KUBECTL_DIR"])
    calls = folder / "calls.jsonl"
    key = command_key(argv)
    previous = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    record = {"argv": argv}
    if "-" in argv and argv[argv.index("-") - 1] in ("-f", "--filename"):
        record["stdin"] = sys.stdin.read()
    with calls.open("a") as log:
        log.write(json.dumps(record) + "\n")
    if key == "kustomize":
        real = os.environ["FAKE_KUBECTL_REAL"]
        os.execv(real, [real, *argv])
    answers = json.loads((folder / "script.json").read_text()).get(key, []) if (folder / "script.json").exists() else []
    used = sum(1 for call in previous if command_key(call["argv"]) == key)
    answer = answers[min(used, len(answers) - 1)] if answers else {}
    return port_forward(answer) if key == "port-forward" else respond(answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
