"""grpcio stubs for Protos/kiam.proto and a mutual-TLS channel, shared by the Python clients the
tests and benchmarks drive. Stubs are generated with grpc_tools into a temporary directory that is
removed at exit (pip install grpcio grpcio-tools)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load():
    """Generates the stubs and returns the modules (grpc, kiam_pb2, kiam_pb2_grpc)."""
    out = tempfile.mkdtemp(prefix="kiam-py-")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{_root}/Protos", f"--python_out={out}",
         f"--grpc_python_out={out}", f"{_root}/Protos/kiam.proto"],
        check=True)
    sys.path.insert(0, out)
    import grpc
    import kiam_pb2
    import kiam_pb2_grpc
    return grpc, kiam_pb2, kiam_pb2_grpc


def stub(grpc, kiam_pb2_grpc, address, ca, cert, key, server_name, target_prefix="", options=()):
    """A KiamService stub over mutual TLS, verifying the server as `server_name`."""
    def read(path):
        with open(path, "rb") as handle:
            return handle.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))
    channel = grpc.secure_channel(
        target_prefix + address, credentials, options=[("grpc.ssl_target_name_override", server_name), *options])
    return kiam_pb2_grpc.KiamServiceStub(channel)
