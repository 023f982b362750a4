// Scripted loopback HTTP servers for behaviour a real registry cannot be made to show, and a
// recording proxy in front of a real one; every request is recorded, each server closed by closeAll().
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeLater } from './registry-client.ts';

export interface Scripted {
  url: string;
  requests: { method: string; path: string; headers: IncomingMessage['headers']; status?: number }[];
}

/** A node http server on loopback answering with `handler`; every request is recorded. */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse, server: Scripted) => void): Promise<Scripted> {
  const scripted: Scripted = { url: '', requests: [] };
  const server = createServer((req, res) => {
    scripted.requests.push({ method: req.method!, path: req.url!, headers: req.headers });
    handler(req, res, scripted);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  scripted.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  closeLater(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  return scripted;
}

/** Forwards to a real registry, recording each request with the status it got (Host kept, so Locations point back here). */
export async function recordingProxy(target: string): Promise<Scripted> {
  return serve((req, res, scripted) => {
    const entry = scripted.requests.at(-1)!;
    const upstream = httpRequest(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      entry.status = answer.statusCode;
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
}

export function ociError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}
