/**
 * The lab's gRPC service `keepwire.lab.Lab` for `@grpc/grpc-js` peers:
 * `Watch` (server streaming) and `Ping` (unary), JSON messages (grpc-js takes
 * any serializer, so no .proto and no codegen). Shared by the lab's peers
 * (grpc-peer-main.ts) and bench/grpc.ts.
 */
const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): unknown => JSON.parse(bytes.toString());
const method = (name: string, responseStream: boolean) => ({
  path: `/keepwire.lab.Lab/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: serialize,
  requestDeserialize: deserialize,
  responseSerialize: serialize,
  responseDeserialize: deserialize,
});

export const LAB_SERVICE = { watch: method('Watch', true), ping: method('Ping', false) };
