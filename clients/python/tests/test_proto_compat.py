"""The message classes build on every protobuf runtime: Debian's (MessageFactory.GetPrototype
only) and current releases (message_factory.GetMessageClass; GetPrototype removed in 5.x).
Runs without a service. Only one runtime is installed at a time, so the other is simulated."""

import importlib
import sys
import unittest
from unittest import mock

from google.protobuf import message_factory


def _fresh_proto():
    sys.modules.pop("websocketmanager._proto", None)
    return importlib.import_module("websocketmanager._proto")


class ProtoCompatTest(unittest.TestCase):
    def tearDown(self):
        _fresh_proto()  # leave the module as the installed runtime builds it

    def check_messages(self, pb):
        req = pb.SendRequest(id="c1", message="hi", timeout_ms=5000)
        self.assertEqual(pb.SendRequest.FromString(req.SerializeToString()), req)
        self.assertEqual(pb.status_name(pb.ConnectResponse(status=2).status), "CONNECTED")

    def test_installed_runtime(self):
        self.check_messages(_fresh_proto())

    def test_runtime_without_get_prototype(self):
        # As protobuf >= 5: GetMessageClass exists and GetPrototype is gone.
        real = getattr(message_factory, "GetMessageClass", None)
        if real is None:
            def real(descriptor):
                return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)
        calls = []

        def get_message_class(descriptor):
            calls.append(descriptor.full_name)
            with mock.patch.object(message_factory.MessageFactory, "GetPrototype", real_get_prototype):
                return real(descriptor)

        def removed(*args, **kwargs):
            raise AttributeError("MessageFactory.GetPrototype was removed")

        real_get_prototype = getattr(message_factory.MessageFactory, "GetPrototype", removed)
        with mock.patch.object(message_factory, "GetMessageClass", get_message_class, create=True), \
                mock.patch.object(message_factory.MessageFactory, "GetPrototype", removed, create=True):
            pb = _fresh_proto()
        self.assertIn("websocketmanager.v1.SendRequest", calls)
        self.check_messages(pb)

    def test_runtime_without_get_message_class(self):
        # As Debian 12's protobuf (3.21 / runtime 4.21): only MessageFactory.GetPrototype.
        if not hasattr(message_factory.MessageFactory, "GetPrototype"):
            self.skipTest("this protobuf runtime has no MessageFactory.GetPrototype")
        saved = message_factory.__dict__.get("GetMessageClass")
        try:
            if saved is not None:
                del message_factory.GetMessageClass
            pb = _fresh_proto()
        finally:
            if saved is not None:
                message_factory.GetMessageClass = saved
        self.check_messages(pb)

if __name__ == "__main__":
    unittest.main()
