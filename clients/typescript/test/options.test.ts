// The Connect option helpers build the messages the API documents; their JSON is the REST
// body of the README's "Connection options in one example". No service needed
// (node --test dist/test/options.test.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toJson } from "@bufbuild/protobuf";
import {
  ConnectRequestSchema,
  FrameDecoding,
  KeyMaterialSchema,
  TLSVersion,
  fromFile,
  fromSecret,
  inlinePem,
  secretRef,
  tlsFromSecret,
} from "../src/index.js";

test("secretRef and the key material helpers", () => {
  assert.deepEqual(toJson(KeyMaterialSchema, fromSecret("secretstore", "tls", "cert")), {
    secret: { store: "secretstore", key: "tls", field: "cert" },
  });
  assert.deepEqual(toJson(KeyMaterialSchema, fromSecret("secretstore", "ca")), { secret: { store: "secretstore", key: "ca" } });
  assert.deepEqual(toJson(KeyMaterialSchema, fromFile("/etc/wsm/tls/ca.pem")), { file: "/etc/wsm/tls/ca.pem" });
  assert.deepEqual(toJson(KeyMaterialSchema, inlinePem("-----BEGIN CERTIFICATE-----")), { inlinePem: "-----BEGIN CERTIFICATE-----" });
  assert.equal(secretRef("vault", "feed", "bearer").field, "bearer");
});

test("a wss:// connect with a client certificate from the secret store, as REST JSON", () => {
  const tls = tlsFromSecret("secretstore", "demo-client-tls");
  tls.minVersion = TLSVersion.TLS_VERSION_1_2;
  const req = create(ConnectRequestSchema, {
    url: "wss://127.0.0.1:9443/echo",
    connectionId: "secure-feed",
    autoReconnect: true,
    tls,
    secretHeaders: { "X-Api-Token": secretRef("secretstore", "demo-api-token") },
    permessageDeflate: true,
    decodeBinary: FrameDecoding.AUTO,
    maxDecodedBytes: 16 << 20,
    sendRate: { perSecond: 20, burst: 5 },
    egressProxy: "corp",
  });
  assert.deepEqual(toJson(ConnectRequestSchema, req), {
    url: "wss://127.0.0.1:9443/echo",
    connectionId: "secure-feed",
    autoReconnect: true,
    tls: {
      ca: { secret: { store: "secretstore", key: "demo-client-tls", field: "ca" } },
      clientCertificate: { secret: { store: "secretstore", key: "demo-client-tls", field: "cert" } },
      clientKey: { secret: { store: "secretstore", key: "demo-client-tls", field: "key" } },
      minVersion: "TLS_VERSION_1_2",
    },
    secretHeaders: { "X-Api-Token": { store: "secretstore", key: "demo-api-token" } },
    permessageDeflate: true,
    decodeBinary: "FRAME_DECODING_AUTO",
    maxDecodedBytes: 16777216,
    sendRate: { perSecond: 20, burst: 5 },
    egressProxy: "corp",
  });
});
