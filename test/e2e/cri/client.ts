// A CRI v1 client as the kubelet is one: gRPC over containerd's unix socket, the services of
// api.proto beside this file. Field names stay as upstream spells them (snake_case), int64s
// come back as numbers, enums as their names.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), 'api.proto');

// Any message: the suite builds requests as plain objects and reads answers the same way.
export type Msg = Record<string, any>;
type Call = (req: Msg, timeoutMs?: number) => Promise<Msg>;
export type Service = Record<string, Call>;

export interface CriClient {
  runtime: Service;
  image: Service;
  close(): void;
}

/** Wraps each unary method of a generated client in a promise with a deadline. */
function promised(client: grpc.Client, defaultTimeoutMs: number): Service {
  return new Proxy({} as Service, {
    get(_t, name: string) {
      return (req: Msg, timeoutMs = defaultTimeoutMs) =>
        new Promise<Msg>((resolve, reject) => {
          const method = (client as unknown as Record<string, unknown>)[name];
          if (typeof method !== 'function') return reject(new Error(`api.proto has no method ${name}`));
          const deadline = new Date(Date.now() + timeoutMs);
          method.call(client, req, { deadline }, (err: grpc.ServiceError | null, res: Msg) => {
            if (err) reject(new Error(`${name}: ${err.details || err.message}`));
            else resolve(res);
          });
        });
    },
  });
}

export function criClient(socket: string, defaultTimeoutMs = 120_000): CriClient {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: Record<string, grpc.ServiceClientConstructor> };
  };
  const address = `unix://${socket}`;
  const creds = grpc.credentials.createInsecure();
  const rt = new pkg.runtime.v1.RuntimeService(address, creds);
  const im = new pkg.runtime.v1.ImageService(address, creds);
  return {
    runtime: promised(rt, defaultTimeoutMs),
    image: promised(im, defaultTimeoutMs),
    close() {
      rt.close();
      im.close();
    },
  };
}
