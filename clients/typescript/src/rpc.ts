/**
 * A small generic adapter from protoc-gen-es service descriptors to
 * `@grpc/grpc-js`: every unary method becomes a promise-returning function,
 * every server-streaming method an async-iterable stream. Messages travel as
 * standard protobuf binary (`toBinary` / `fromBinary`).
 */
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

/** Default deadline of a unary call, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Per-call options. */
export interface CallOptions {
  /** Deadline in milliseconds from now (unary calls default to {@link DEFAULT_TIMEOUT_MS}; streams have none unless given). */
  timeoutMs?: number;
  /** Extra request metadata. */
  metadata?: grpc.Metadata;
}

/** A server stream: iterate it with `for await`, stop it with `cancel()`. */
export interface ServerStream<O> extends AsyncIterable<O> {
  /** Cancel the call; iteration then ends with a CANCELLED error, which {@link isCancelled} recognizes. */
  cancel(): void;
}

type MethodFn<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => ServerStream<MessageShape<O>>
    : never;

/** The typed client of a service: one function per unary or server-streaming method, keyed by the method's local (camelCase) name. */
export type ServiceClient<T extends GenServiceMethods> = { [K in keyof T]: MethodFn<T[K]> };

/** The typed client of a generated service constant, e.g. `ClientOf<typeof OrderService>`. */
export type ClientOf<S> = S extends GenService<infer T> ? ServiceClient<T> : never;

function deadline(timeoutMs: number | undefined, fallback: number | undefined): grpc.Deadline | undefined {
  const ms = timeoutMs ?? fallback;
  return ms === undefined ? undefined : new Date(Date.now() + ms);
}

/**
 * Builds a typed client for `service` on an existing grpc-js client (which owns
 * the channel; one grpc-js client can serve every service of a node).
 */
export function createServiceClient<T extends GenServiceMethods>(service: GenService<T>, transport: grpc.Client): ServiceClient<T> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    const serialize = (value: unknown): Buffer => Buffer.from(toBinary(method.input, value as MessageShape<DescMessage>));
    const deserialize = (bytes: Buffer): unknown => fromBinary(method.output, bytes);
    switch (method.methodKind) {
      case "unary":
        client[method.localName] = (request: MessageInitShape<DescMessage>, options: CallOptions = {}) =>
          new Promise((resolve, reject) => {
            transport.makeUnaryRequest(
              path,
              serialize,
              deserialize,
              create(method.input, request),
              options.metadata ?? new grpc.Metadata(),
              { deadline: deadline(options.timeoutMs, DEFAULT_TIMEOUT_MS) },
              (err: grpc.ServiceError | null, value?: unknown) => (err ? reject(err) : resolve(value)),
            );
          });
        break;
      case "server_streaming":
        client[method.localName] = (request: MessageInitShape<DescMessage>, options: CallOptions = {}) => {
          const call = transport.makeServerStreamRequest(
            path,
            serialize,
            deserialize,
            create(method.input, request),
            options.metadata ?? new grpc.Metadata(),
            { deadline: deadline(options.timeoutMs, undefined) },
          );
          return {
            cancel: () => call.cancel(),
            [Symbol.asyncIterator]: () => (call as AsyncIterable<unknown>)[Symbol.asyncIterator](),
          };
        };
        break;
      default:
        // Client and bidi streaming are not used by customers of this network.
        break;
    }
  }
  return client as ServiceClient<T>;
}

/** True if `err` is a grpc error with status `code`. */
export function hasStatus(err: unknown, code: grpc.status): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

/** True if `err` is the CANCELLED error a cancelled call ends with. */
export function isCancelled(err: unknown): boolean {
  return hasStatus(err, grpc.status.CANCELLED);
}
