// Helpers for the ConnectRequest fields that name secrets and key material (issue 15): the
// oneof of KeyMaterial is verbose to write by hand. They only build messages; the service
// reads what they name at every dial and never returns it.
import { create } from "@bufbuild/protobuf";
import {
  KeyMaterialSchema,
  SecretRefSchema,
  UpstreamTLSSchema,
  type KeyMaterial,
  type SecretRef,
  type UpstreamTLS,
} from "./generated/websocketmanager_pb.js";

/**
 * Names the secret `key` of the Dapr secret store component `store`; `field` picks one value
 * of it (stores return a map; empty: the value named key, or the only value).
 * For `secretHeaders: { "X-Api-Token": secretRef("secretstore", "feed-token") }`.
 */
export function secretRef(store: string, key: string, field = ""): SecretRef {
  return create(SecretRefSchema, { store, key, field });
}

/** Key material read from a secret store at every dial. */
export function fromSecret(store: string, key: string, field = ""): KeyMaterial {
  return create(KeyMaterialSchema, { source: { case: "secret", value: secretRef(store, key, field) } });
}

/**
 * Key material in a file on the service's machine (an absolute path under a directory the
 * operator allowed with --tls-files-dir), read at every dial.
 */
export function fromFile(path: string): KeyMaterial {
  return create(KeyMaterialSchema, { source: { case: "file", value: path } });
}

/**
 * Key material given in the request itself: refused unless the operator set
 * --allow-inline-tls (it is then kept in the actor state store). Prefer fromSecret or fromFile.
 */
export function inlinePem(pem: string): KeyMaterial {
  return create(KeyMaterialSchema, { source: { case: "inlinePem", value: pem } });
}

/**
 * Mutual TLS with everything in one secret: its fields "ca" (trusted besides the system
 * roots), "cert" (the client certificate chain) and "key" (its private key), all PEM — the
 * layout of `make run`'s secret demo-client-tls. Change the result as needed (ca undefined for
 * a server with a public certificate, caOnly, serverName, minVersion).
 */
export function tlsFromSecret(store: string, key: string): UpstreamTLS {
  return create(UpstreamTLSSchema, {
    ca: fromSecret(store, key, "ca"),
    clientCertificate: fromSecret(store, key, "cert"),
    clientKey: fromSecret(store, key, "key"),
  });
}
