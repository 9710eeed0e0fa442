"""The agent: runs on the target, loads models it is sent, measures them with the
target's own runtime and the same protocol as the local backends, and answers.

Requests (``op`` in the JSON header; every reply echoes ``id`` and says ``ok``):

- ``hello`` -> agent and protocol version, runtimes with versions, the device fingerprint,
  the model size cap, whether a token is required;
- ``load`` (``format`` onnx|tflite, ``sha256``, ``threads``, ``name``; payload = model bytes)
  -> ``model`` handle; refused over the size cap, on a SHA-256 mismatch, or with the
  runtime's own reason when it rejects the model;
- ``benchmark`` (``model``, optional ``reference`` handle and ``reference_ms``,
  ``protocol``) -> the measurement (raw statistics, compensated latency, noise flags);
- ``calibrate`` (``model``, ``protocol``) -> the model's own median (the reference's
  calibrated latency);
- ``run`` (``model``, ``arrays``; payload = input arrays) -> output arrays (parity checks);
- ``profile`` (``format`` onnx|tflite, ``sha256``, ``threads``, ``runs``; payload = model
  bytes) -> per-operator times from the runtime's own profiler;
- ``unload`` (``model``), ``shutdown``.

Nothing from the wire is unpickled, names a path on the target or runs code: models
arrive as bytes and go to the runtime's in-memory loader. Needs only numpy, a runtime
and (for serial) pyserial.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import json
import select
import socket
import sys
import time
from dataclasses import fields
from typing import Any, Callable

from hwnas import __version__
from hwnas.agent.links import SerialLink, TcpLink
from hwnas.agent.wire import VERSION, CorruptFrame, LinkError, encode, pack_arrays, read_frame, unpack_arrays
from hwnas.measure.fingerprint import host_fingerprint
from hwnas.measure.protocol import MeasureProtocol, calibrate, measure

DEFAULT_MAX_MODEL_MB = 256


class RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def available_runtimes(torch: bool = False) -> dict[str, dict[str, str]]:
    """Formats this target can run: {format: {"name", "version"}}. ``torch`` (a GPU box
    with hwnas installed) is offered only when asked for, since importing it is slow."""
    out: dict[str, dict[str, str]] = {}
    if torch:
        try:
            from hwnas.agent.torch_runtime import describe

            out["torch"] = describe()
        except ImportError:
            pass
    try:
        from hwnas.measure.runtimes import OrtRunner

        out["onnx"] = {"name": "onnxruntime", "version": OrtRunner.version()}
    except ImportError:
        pass
    try:
        from hwnas.measure.runtimes import _interpreter_class

        _, name, version = _interpreter_class()
        out["tflite"] = {"name": name, "version": version}
    except (ImportError, RuntimeError):
        pass
    return out


def _runner(fmt: str, data: bytes, threads: int, h: dict[str, Any]) -> Any:
    if fmt == "torch":
        from hwnas.agent.torch_runtime import TorchAgentRunner

        return TorchAgentRunner(h.get("recipe"), data, h.get("input_shape"), threads)
    if fmt == "onnx":
        from hwnas.measure.runtimes import OrtRunner

        return OrtRunner(data, threads)
    from hwnas.measure.runtimes import TfliteRunner

    return TfliteRunner(data, threads)


class Agent:
    def __init__(self, formats: list[str] | None = None, max_model_bytes: int = DEFAULT_MAX_MODEL_MB << 20,
                 token: str | None = None, log: Callable[[str], None] | None = None) -> None:
        have = available_runtimes(torch=bool(formats and "torch" in formats))
        if formats:
            missing = [f for f in formats if f not in have]
            if missing:
                raise SystemExit(f"hwnas-agent: no runtime for {', '.join(missing)} here "
                                 f"(found: {', '.join(have) or 'none'}); install onnxruntime, "
                                 "ai-edge-litert or tflite-runtime")
            have = {f: have[f] for f in formats}
        if not have:
            raise SystemExit("hwnas-agent: no runtime found; install onnxruntime, ai-edge-litert or tflite-runtime")
        self.runtimes = have
        self.max_model_bytes = max_model_bytes
        self.token = token
        self.models: dict[str, Any] = {}
        self.log = log or (lambda msg: None)
        self.stop = False

    # -- requests -------------------------------------------------------------------
    def handle(self, h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        rid = h.get("id")
        try:
            if self.token is not None and not hmac.compare_digest(str(h.get("token", "")), self.token):
                raise RequestError("unauthorized", "this agent needs its token (token=... in the device spec)")
            op = h.get("op")
            method = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if method is None:
                raise RequestError("bad_request", f"unknown request {op!r}")
            reply, out = method(h, payload)
            return {"id": rid, "ok": True, **reply}, out
        except RequestError as e:
            return {"id": rid, "ok": False, "code": e.code, "error": str(e)}, b""
        except (ValueError, TypeError, KeyError) as e:
            return {"id": rid, "ok": False, "code": "bad_request", "error": f"bad request: {e}"}, b""

    def op_hello(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        return {"agent_version": __version__, "protocol_version": VERSION, "runtimes": self.runtimes,
                "fingerprint": host_fingerprint(), "max_model_bytes": self.max_model_bytes,
                "token_required": self.token is not None, "models": sorted(self.models)}, b""

    def _received_model(self, h: dict, payload: bytes) -> tuple[str, str, str, int]:
        """(format, name, SHA-256, threads) of a model sent in a request, checked."""
        fmt, name = h.get("format"), str(h.get("name", "model"))
        if fmt not in self.runtimes:
            raise RequestError("bad_request", f"this agent runs {', '.join(self.runtimes)} models, not {fmt!r}")
        if len(payload) > self.max_model_bytes:
            raise RequestError("too_large", f"model {name} has {len(payload)} bytes; this agent accepts at most "
                                            f"{self.max_model_bytes} (--max-model-mb)")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != h.get("sha256"):
            raise RequestError("corrupt", f"model {name}: SHA-256 mismatch (the bytes were damaged on the way)")
        threads = int(h.get("threads", 1))
        if not 1 <= threads <= 256:
            raise RequestError("bad_request", f"threads must be 1..256, not {threads}")
        return str(fmt), name, digest, threads

    def op_load(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        fmt, name, digest, threads = self._received_model(h, payload)
        if fmt == "torch":  # the recipe is part of what the handle names
            recipe = json.dumps([h.get("recipe"), h.get("input_shape")], sort_keys=True).encode()
            digest = hashlib.sha256(recipe + payload).hexdigest()
        handle = f"{fmt}-{digest[:16]}-t{threads}"
        if handle not in self.models:
            try:
                self.models[handle] = _runner(fmt, payload, threads, h)
            except Exception as e:  # noqa: BLE001 (the runtime's own error is the message)
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise RequestError("rejected", f"{self.runtimes[fmt]['name']} rejected model {name}: {reason}") from None
        self.log(f"load {name} -> {handle}")
        return {"model": handle}, b""

    def _model(self, h: dict, key: str = "model") -> Any:
        handle = h.get(key)
        if handle not in self.models:
            raise RequestError("unknown_model", f"no model {handle!r} is loaded (load it first)")
        return self.models[handle]

    @staticmethod
    def _protocol(h: dict) -> MeasureProtocol:
        raw = h.get("protocol") or {}
        if not isinstance(raw, dict):
            raise ValueError("protocol must be an object")
        known = {f.name for f in fields(MeasureProtocol)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown protocol field(s) {', '.join(sorted(unknown))}")
        return MeasureProtocol(**raw)

    def op_benchmark(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        protocol = self._protocol(h)
        runner = self._model(h)
        reference = self._model(h, "reference") if h.get("reference") else None
        ref_ms = h.get("reference_ms")
        m = measure(runner, protocol, reference=reference,
                    reference_ms=float(ref_ms) if ref_ms is not None else None)
        self.log(f"benchmark {h.get('model')} -> {m.latency_ms:.4f} ms")
        return {"measurement": {**m.to_dict(), "stats": m.stats.to_dict()}}, b""

    def op_calibrate(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        protocol = self._protocol(h)
        return {"calibrated_ms": calibrate(self._model(h), protocol)}, b""

    def op_profile(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        fmt, name, _, threads = self._received_model(h, payload)
        runs = int(h.get("runs", 50))
        if fmt == "torch" or not 1 <= runs <= 10_000:
            raise RequestError("bad_request", f"profile takes onnx or tflite models and 1..10000 runs, not {fmt!r} "
                                              f"and {runs}")
        from hwnas.measure.op_profile import profile_file

        try:
            profile = profile_file(fmt, payload, threads, runs)
        except Exception as e:  # noqa: BLE001 (the runtime's own error is the message)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RequestError("rejected", f"{self.runtimes[fmt]['name']} rejected model {name}: {reason}") from None
        self.log(f"profile {name}: {len(profile['ops'])} operators")
        return {"profile": profile}, b""

    def op_run(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        runner = self._model(h)
        outputs = runner.run(unpack_arrays(h.get("arrays"), payload))
        specs, data = pack_arrays(outputs)
        return {"arrays": specs}, data

    def op_unload(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        runner = self.models.pop(str(h.get("model")), None)
        if runner is not None and hasattr(runner, "close"):
            runner.close()
        return {"unloaded": runner is not None}, b""

    def op_shutdown(self, h: dict, payload: bytes) -> tuple[dict, bytes]:
        self.stop = True
        return {"bye": True}, b""

    # -- serving --------------------------------------------------------------------
    def serve_one(self, link: Any, timeout: float) -> bool:
        """Answer one request; False when the link is gone."""
        try:
            header, payload = read_frame(link, timeout=timeout, max_payload=self.max_model_bytes + (1 << 20))
        except CorruptFrame as e:
            self.log(f"corrupt frame: {e}")
            link.drain()
            header, payload = None, b""
            reply, out = {"id": None, "ok": False, "code": "corrupt", "error": f"corrupt frame: {e}"}, b""
        except LinkError as e:
            self.log(f"link: {e}")
            return False
        if header is not None:
            reply, out = self.handle(header, payload)
        try:
            link.write(encode(reply, out))
        except LinkError as e:
            self.log(f"link: {e}")
            return False
        return True

    def serve_link(self, link: Any) -> None:
        """Answer requests on one link until it closes or a shutdown arrives."""
        while not self.stop and self.serve_one(link, 3600.0):
            pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_tcp(agent: Agent, host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
    if not _is_loopback(host) and agent.token is None:
        raise SystemExit(f"hwnas-agent: binding to {host} (not loopback) needs a shared token: --token SECRET "
                         "(or HWNAS_AGENT_TOKEN), and token=SECRET in the host's device spec")
    srv = socket.create_server((host, port), reuse_port=False)
    bound = srv.getsockname()[1]
    agent.log(f"listening on {host}:{bound}")
    if ready:
        ready(bound)
    link: TcpLink | None = None
    with srv:
        while not agent.stop:
            ready_socks, _, _ = select.select([srv] + ([link.sock] if link else []), [], [], 1.0)
            if srv in ready_socks:
                # the newest host wins: after a host crash or a silently dropped route the old
                # connection may never close, and the host reconnecting must not wait behind it
                conn, addr = srv.accept()
                agent.log(f"connection from {addr[0]}:{addr[1]}")
                if link is not None:
                    link.close()
                link = TcpLink(conn)
            elif link is not None and link.sock in ready_socks and not agent.serve_one(link, 60.0):
                link.close()
                link = None
        if link is not None:
            link.close()


def serve_serial(agent: Agent, path: str, baud: int) -> None:
    """Serve a serial line; if the port goes away (a cable pulled), wait for it to come back."""
    while not agent.stop:
        try:
            link = SerialLink.open(path, baud)
        except LinkError as e:
            agent.log(str(e))
            time.sleep(1.0)
            continue
        agent.log(f"serving {path} at {baud} baud")
        agent.serve_link(link)
        link.close()


def add_serve_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``serve``, shared by ``hwnas-agent serve`` and ``hwnas agent serve``."""
    import os

    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP (loopback unless a token is given)")
    where.add_argument("--serial", metavar="PORT", help="serve a serial line (e.g. /dev/ttyGS0)")
    s.add_argument("--baud", type=int, default=921600, help="serial line speed (default 921600)")
    s.add_argument("--token", default=os.environ.get("HWNAS_AGENT_TOKEN"),
                   help="shared token (TCP; required to listen beyond loopback; default $HWNAS_AGENT_TOKEN)")
    s.add_argument("--runtime", help="formats to offer, comma-separated (onnx, tflite, torch); default: the "
                                     "onnx and tflite runtimes found (torch only when named: a GPU box)")
    s.add_argument("--max-model-mb", type=int, default=DEFAULT_MAX_MODEL_MB,
                   help=f"largest model accepted, in MiB (default {DEFAULT_MAX_MODEL_MB})")
    s.add_argument("--port-file", help="write the bound TCP port here (for --tcp HOST:0)")
    s.add_argument("--quiet", action="store_true", help="log nothing to stderr")


def serve(args: argparse.Namespace) -> int:
    """Serve until shut down, as the parsed ``serve`` options say."""
    import os

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"hwnas-agent: {msg}", file=sys.stderr, flush=True)

    formats = [f.strip() for f in args.runtime.split(",")] if args.runtime else None
    agent = Agent(formats, args.max_model_mb << 20, args.token, log)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise SystemExit(f"hwnas-agent: error: --tcp wants HOST:PORT, got {args.tcp!r}")

        def ready(bound: int) -> None:
            if args.port_file:
                tmp = args.port_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(str(bound))
                os.replace(tmp, args.port_file)

        serve_tcp(agent, host or "127.0.0.1", int(port), ready)
    else:
        serve_serial(agent, args.serial, args.baud)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hwnas-agent", description="hwnas on-device latency agent")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_serve_arguments(sub.add_parser("serve", help="serve measurement requests"))
    sub.add_parser("info", help="print the runtimes and fingerprint this agent would report")
    args = p.parse_args(argv)
    if args.cmd == "info":
        print(json.dumps({"agent_version": __version__, "runtimes": available_runtimes(),
                          "fingerprint": host_fingerprint()}, indent=1))
        return 0
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
