"""Builders for the ConnectRequest fields that name secrets and key material, and readers of
the plain values WebSocketManagerClient.connect accepts for the others (decode_binary,
send_rate). They only build messages: the service reads what they name at every dial and never
returns it.

    from websocketmanager import secret_ref, tls_from_secret

    await client.connect("wss://127.0.0.1:9443/echo",
                         tls=tls_from_secret("secretstore", "demo-client-tls"),
                         secret_headers={"X-Api-Token": secret_ref("secretstore", "demo-api-token")},
                         permessage_deflate=True, decode_binary="auto", send_rate=(20, 5))
"""

import numbers

from . import _proto as pb

SecretRef = pb.SecretRef
KeyMaterial = pb.KeyMaterial
UpstreamTLS = pb.UpstreamTLS
SendRate = pb.SendRate

_DECODINGS = ("none", "gzip", "zlib", "deflate", "auto")
_TLS_VERSIONS = {"1.2": "TLS_VERSION_1_2", "1.3": "TLS_VERSION_1_3"}


def secret_ref(store, key, field=""):
    """Names the secret key of the Dapr secret store component store; field picks one value of
    it (stores return a map; empty: the value named key, or the only value)."""
    return pb.SecretRef(store=store, key=key, field=field)


def from_secret(store, key, field=""):
    """Key material (PEM) read from a secret store at every dial."""
    return pb.KeyMaterial(secret=secret_ref(store, key, field))


def from_file(path):
    """Key material in a file on the service's machine: an absolute path under a directory the
    operator allowed with --tls-files-dir, read at every dial."""
    return pb.KeyMaterial(file=path)


def inline_pem(pem):
    """Key material given in the request itself (str or bytes): refused unless the operator set
    --allow-inline-tls (it is then kept in the actor state store). Prefer from_secret or
    from_file."""
    if isinstance(pem, (bytes, bytearray)):
        pem = bytes(pem).decode("ascii")
    return pb.KeyMaterial(inline_pem=pem)


def upstream_tls(ca=None, client_certificate=None, client_key=None, *, ca_only=False, server_name="",
                 min_version=None):
    """The TLS settings of a wss:// connection. ca, client_certificate and client_key are
    KeyMaterial (from_secret, from_file, inline_pem); ca is trusted besides the system roots,
    or instead of them with ca_only; client_certificate and client_key go together (mutual
    TLS). server_name: the name verified and sent as SNI instead of the URL's host.
    min_version: "1.2" (the default) or "1.3"."""
    if (client_certificate is None) != (client_key is None):
        raise ValueError("client_certificate and client_key go together (a client certificate and its private key)")
    if ca_only and ca is None:
        raise ValueError("ca_only needs ca (the CA to trust instead of the system roots)")
    tls = pb.UpstreamTLS(ca_only=ca_only, server_name=server_name)
    for name, value in (("ca", ca), ("client_certificate", client_certificate), ("client_key", client_key)):
        if value is not None:
            copy_into(getattr(tls, name), value, f"{name} must be KeyMaterial (from_secret, from_file or inline_pem)")
    if min_version is not None:
        version = _TLS_VERSIONS.get(str(min_version))
        if version is None:
            raise ValueError(f"min_version must be \"1.2\" or \"1.3\", got {min_version!r}")
        tls.min_version = pb.enum_value("TLSVersion", version)
    return tls


def tls_from_secret(store, key, **kwargs):
    """Mutual TLS with everything in one secret: its fields "ca" (trusted besides the system
    roots), "cert" (the client certificate chain) and "key" (its private key), all PEM, the
    layout of `make run`'s secret demo-client-tls. kwargs as upstream_tls (ca_only,
    server_name, min_version)."""
    return upstream_tls(from_secret(store, key, "ca"), from_secret(store, key, "cert"), from_secret(store, key, "key"),
                        **kwargs)


def copy_into(dst, value, what):
    """Copies message value into dst, a field of the same message type, or raises TypeError
    what. By type name and bytes, not class: a message built from another load of the
    descriptors (another copy of the package, a test that reloads it) is as good."""
    name = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None)
    if name != dst.DESCRIPTOR.full_name:
        raise TypeError(f"{what}, got {type(value).__name__}")
    dst.Clear()
    dst.MergeFromString(value.SerializeToString())


def decoding(value):
    """The FrameDecoding number of "none", "gzip", "zlib", "deflate" or "auto" (any case), or of
    a FrameDecoding number."""
    if isinstance(value, str):
        if value.lower() not in _DECODINGS:
            raise ValueError(f"decode_binary must be one of {', '.join(_DECODINGS)}, got {value!r}")
        return pb.enum_value("FrameDecoding", "FRAME_DECODING_" + value.upper())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"decode_binary must be a str ({', '.join(_DECODINGS)}) or a FrameDecoding number, got {value!r}")


def send_rate(value):
    """A SendRate from a SendRate, a number (frames a second, burst 1) or a pair
    (per_second, burst)."""
    if getattr(getattr(value, "DESCRIPTOR", None), "full_name", None) == pb.SendRate.DESCRIPTOR.full_name:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return pb.SendRate(per_second=float(value))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        per_second, burst = value
        if isinstance(burst, numbers.Integral) and not isinstance(burst, bool) and burst >= 0:
            return pb.SendRate(per_second=float(per_second), burst=int(burst))
    raise ValueError(f"send_rate must be a SendRate, frames a second, or (per_second, burst), got {value!r}")
