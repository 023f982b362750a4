// A download body that survives breaks: when the stream errors (a reset, a stall, "Premature close")
// or ends short of its known size (a truncated body with a matching Content-Length), it is opened
// again from the byte it stopped at and continues, so the reader sees one continuous stream. Where
// the server honours the range (HTTP 206, S3 always) only the rest travels; where it answers with
// the whole body again, the bytes already delivered are skipped. Nothing here checks content: the
// consumer verifies size and digest (the store and the registry upload both do), so a server that
// serves different bytes the second time still fails that blob.
import { Readable } from 'node:stream';
import { backoff, DEFAULT_HTTP_OPTIONS, mayRetry, type RetryPolicy } from './registry/http.ts';
import { errorText } from './redact.ts';

export interface ResumableOptions {
  /** The full size when known; a body that ends before it is resumed. */
  size?: number;
  /** Opens the content again from `offset`; `start` is where the new body begins (offset, or 0). */
  reopen: (offset: number) => Promise<{ body: Readable; start: number }>;
  /** Names the download in the error when the attempts run out (operation, object, endpoint). */
  context: string;
  policy?: RetryPolicy;
}

export function resumableStream(first: Readable, options: ResumableOptions): Readable {
  const policy = options.policy ?? DEFAULT_HTTP_OPTIONS.retry;
  async function* chunks(): AsyncGenerator<Buffer> {
    let body = first;
    let offset = 0;
    let skip = 0;
    let failures = 0;
    let began = Date.now();
    try {
      for (;;) {
        try {
          for await (const piece of body as AsyncIterable<Buffer>) {
            let chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
            if (skip > 0) {
              const n = Math.min(skip, chunk.length);
              skip -= n;
              chunk = chunk.subarray(n);
              if (chunk.length === 0) continue;
            }
            offset += chunk.length;
            // Progress resets the budget: a long download may break more than maxAttempts times.
            failures = 0;
            began = Date.now();
            yield chunk;
          }
          if (skip > 0) throw new Error(`the body ended before the ${offset} bytes already received`);
          if (options.size === undefined || offset >= options.size) return;
          throw new Error(`body ended after ${offset} of ${options.size} bytes`);
        } catch (error) {
          body.destroy();
          failures++;
          const why = errorText(error);
          if (!mayRetry(policy, failures, began)) {
            // No cause: the engine would see a transient network code in it and start over again.
            throw new Error(`${options.context}: download broke after ${offset} bytes, ${failures} attempt(s) without progress: ${why}`);
          }
          await backoff(policy, failures);
          const next = await options.reopen(offset);
          if (next.start > offset) throw new Error(`${options.context}: resumed at byte ${next.start}, expected ${offset} or 0`);
          body = next.body;
          skip = offset - next.start;
        }
      }
    } finally {
      body.destroy();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
