"""The Connect option builders and the request connect() builds from its keyword arguments;
no service needed: PYTHONPATH=. /usr/bin/python3 -m unittest tests/test_connect_options.py
(from clients/python)."""

import unittest

from google.protobuf import json_format

from websocketmanager import (WebSocketManagerClient, from_file, from_secret, inline_pem, secret_ref,
                              tls_from_secret, upstream_tls)


def as_json(message):
    return json_format.MessageToDict(message)


class OptionBuildersTest(unittest.TestCase):
    def test_key_material(self):
        self.assertEqual(as_json(from_secret("secretstore", "tls", "cert")),
                         {"secret": {"store": "secretstore", "key": "tls", "field": "cert"}})
        self.assertEqual(as_json(from_file("/etc/wsm/tls/ca.pem")), {"file": "/etc/wsm/tls/ca.pem"})
        self.assertEqual(as_json(inline_pem(b"-----BEGIN CERTIFICATE-----")), {"inlinePem": "-----BEGIN CERTIFICATE-----"})
        self.assertEqual(secret_ref("vault", "feed").field, "")

    def test_tls_from_secret(self):
        tls = tls_from_secret("secretstore", "demo-client-tls", min_version="1.3", server_name="feed.internal")
        self.assertEqual(as_json(tls), {
            "ca": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "ca"}},
            "clientCertificate": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "cert"}},
            "clientKey": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "key"}},
            "serverName": "feed.internal",
            "minVersion": "TLS_VERSION_1_3",
        })

    def test_bad_tls_is_refused_with_a_reason(self):
        cases = [
            (dict(client_certificate=from_file("/c.pem")), ValueError, "go together"),
            (dict(client_key=from_file("/k.pem")), ValueError, "go together"),
            (dict(ca_only=True), ValueError, "ca_only needs ca"),
            (dict(ca=from_file("/ca.pem"), min_version="1.1"), ValueError, "min_version must be"),
            (dict(ca="/ca.pem"), TypeError, "ca must be KeyMaterial"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(error, message):
                    upstream_tls(**kwargs)


class ConnectRequestTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.client = WebSocketManagerClient(host="127.0.0.1", port=1)  # never called
        self.sent = []

        async def call(method, request, response, timeout=None):
            self.sent.append((method, request))
            return response()
        self.client._call = call

    async def asyncTearDown(self):
        await self.client.close()

    async def test_every_option_reaches_the_request(self):
        await self.client.connect("wss://127.0.0.1:9443/echo", connection_id="secure-feed", auto_reconnect=True,
                                  tls=tls_from_secret("secretstore", "demo-client-tls"),
                                  secret_headers={"X-Api-Token": secret_ref("secretstore", "demo-api-token")},
                                  permessage_deflate=True, decode_binary="AUTO", max_decoded_bytes=16 << 20,
                                  send_rate=(20, 5), egress_proxy="corp")
        method, req = self.sent[0]
        self.assertEqual(method, "Connect")
        self.assertEqual(as_json(req), {
            "url": "wss://127.0.0.1:9443/echo",
            "connectionId": "secure-feed",
            "autoReconnect": True,
            "tls": {
                "ca": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "ca"}},
                "clientCertificate": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "cert"}},
                "clientKey": {"secret": {"store": "secretstore", "key": "demo-client-tls", "field": "key"}},
            },
            "secretHeaders": {"X-Api-Token": {"store": "secretstore", "key": "demo-api-token"}},
            "permessageDeflate": True,
            "decodeBinary": "FRAME_DECODING_AUTO",
            "maxDecodedBytes": 16777216,
            "sendRate": {"perSecond": 20.0, "burst": 5},
            "egressProxy": "corp",
        })

    async def test_send_rate_forms(self):
        for value, want in [(0.5, {"perSecond": 0.5}), ((10, 0), {"perSecond": 10.0}), ([3, 2], {"perSecond": 3.0, "burst": 2})]:
            with self.subTest(value=value):
                self.sent.clear()
                await self.client.connect("ws://h/x", send_rate=value)
                self.assertEqual(as_json(self.sent[0][1])["sendRate"], want)

    async def test_bad_values_are_refused_before_sending(self):
        cases = [
            (dict(decode_binary="brotli"), ValueError, "decode_binary must be one of none, gzip, zlib, deflate, auto"),
            (dict(decode_binary=True), TypeError, "decode_binary must be"),
            (dict(send_rate=(1, 2, 3)), ValueError, "send_rate must be"),
            (dict(send_rate=(1, -1)), ValueError, "send_rate must be"),
            (dict(send_rate="fast"), ValueError, "send_rate must be"),
            (dict(secret_headers={"X-Api-Token": "secretstore/demo-api-token"}), TypeError, r"secret_headers\['X-Api-Token'\] must be a SecretRef"),
            (dict(tls=from_file("/ca.pem")), TypeError, "tls must be an UpstreamTLS"),
        ]
        for kwargs, error, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(error, message):
                    await self.client.connect("ws://h/x", **kwargs)
        self.assertEqual(self.sent, [])

    async def test_fail_fast(self):
        await self.client.send("c1", "hi", fail_fast=True)
        await self.client.send_raw("c1", "hi", fail_fast=True)
        await self.client.send_raw("c1", "hi")
        self.assertEqual([(m, r.fail_fast) for m, r in self.sent], [("Send", True), ("SendRaw", True), ("SendRaw", False)])


if __name__ == "__main__":
    unittest.main()
