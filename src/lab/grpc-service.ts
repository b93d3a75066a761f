/**
 * The lab's gRPC service `keepwire.lab.Lab` for `@grpc/grpc-js` peers:
 * `Watch` (server streaming) and `Ping` (unary), JSON messages (grpc-js takes
 * any serializer, so no .proto and no codegen). Shared by the lab's peers
 * (grpc-peer-main.ts) and bench/grpc.ts.
 *
 * `@grpc/grpc-js` is a development dependency, not a runtime one: with
 * protobufjs, yargs and @types/node it would add about 30 packages and 11 MB
 * to every install for one lab scenario. Where it is missing (the .deb, the
 * container, `npm install keepwire`) the `grpc` variants are skipped with
 * the reason; this module itself never loads it.
 */
import { createRequire } from 'node:module';

/** Whether `@grpc/grpc-js` can be loaded from here (the lab's peers import it). */
export function grpcJsAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('@grpc/grpc-js');
    return true;
  } catch {
    return false;
  }
}

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
