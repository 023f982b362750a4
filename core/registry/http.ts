// One HTTP attempt, and the retry loop around attempts. Every request runs on an undici Agent whose
// timeouts bound each phase rather than the whole exchange: connect, time to response headers, and
// the idle gap between body chunks, so a stalled registry fails fast while a 10 GiB layer that keeps
// flowing never times out. Redirects are never followed here (undici's `request` does not): the
// caller decides per hop whether the Authorization header may go along.
import { Agent, request, type Dispatcher } from 'undici';
import { redact } from '../redact.ts';
import { DEFAULT_IDLE_TIMEOUT_MS, idleTimeoutMs } from '../timeouts.ts';
import { RegistryAuthError, RegistryConfigError, RegistryError, RegistryNotFoundError } from './errors.ts';

export interface RetryPolicy {
  /** Attempts in total, first one included. */
  maxAttempts: number;
  /** Backoff cap for attempt n is min(maxDelayMs, baseDelayMs * 2^(n-1)); the delay is uniform in [0, cap]. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After we honour; a registry asking for longer still gets this much. */
  maxRetryAfterMs: number;
  /** No new attempt starts this long after the first one began. */
  maxElapsedMs?: number;
}

export interface HttpOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** Longest silence between two body chunks (not a total: big blobs stream as long as they flow). */
  bodyIdleTimeoutMs: number;
  /**
   * Longest time to read a whole small body (manifest, listing page, token, error): a registry
   * sending one byte just inside the idle timeout would otherwise hold the run forever.
   */
  smallBodyDeadlineMs: number;
  retry: RetryPolicy;
}

export const DEFAULT_HTTP_OPTIONS: HttpOptions = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyIdleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  smallBodyDeadlineMs: 120_000,
  retry: { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 20_000, maxRetryAfterMs: 60_000, maxElapsedMs: 10 * 60_000 },
};

export type HttpResponse = Dispatcher.ResponseData;
type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  /** Always a Buffer, never a stream: every request we send can be replayed after a 401 or a retry. */
  body?: Buffer;
}

/** Network failures worth another attempt: the next connection may well work. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export class HttpClient {
  readonly options: HttpOptions;
  private readonly agent: Agent;

  constructor(options: Partial<HttpOptions> = {}) {
    // The idle deadline follows ECR_BACKUP_IDLE_TIMEOUT_MS unless the caller sets it.
    this.options = {
      ...DEFAULT_HTTP_OPTIONS,
      bodyIdleTimeoutMs: idleTimeoutMs(),
      ...options,
      retry: { ...DEFAULT_HTTP_OPTIONS.retry, ...options.retry },
    };
    this.agent = new Agent({
      connect: { timeout: this.options.connectTimeoutMs },
      headersTimeout: this.options.headersTimeoutMs,
      bodyTimeout: this.options.bodyIdleTimeoutMs,
    });
  }

  /** One attempt. Network failures become RegistryError (retryable when transient) naming `context`. */
  async send(req: HttpRequest, context: string): Promise<HttpResponse> {
    try {
      return await request(req.url, {
        method: req.method,
        headers: { 'user-agent': 'ecr-backup', ...req.headers },
        body: req.body,
        dispatcher: this.agent,
      });
    } catch (error) {
      throw networkError(error, context);
    }
  }

  /** Runs `attempt` until it succeeds, throws something not retryable, or attempts run out. */
  async retry<T>(attempt: () => Promise<T>): Promise<T> {
    const policy = this.options.retry;
    const began = Date.now();
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof RegistryError) || !error.retryable || !mayRetry(policy, n, began)) throw error;
        await backoff(policy, n, error.retryAfterMs);
      }
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** Whether attempt `n` (1-based), which just failed, may be followed by another under `policy`. */
export function mayRetry(policy: RetryPolicy, n: number, began: number): boolean {
  return n < policy.maxAttempts && (policy.maxElapsedMs === undefined || Date.now() - began < policy.maxElapsedMs);
}

/**
 * The one backoff of every retry in the worker (registry requests, resumed bodies, blob transfers,
 * S3 body reads): Retry-After when the server sent one (capped), else full jitter in
 * [0, min(maxDelayMs, baseDelayMs * 2^(n-1))].
 */
export async function backoff(policy: RetryPolicy, n: number, retryAfterMs?: number): Promise<void> {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
  const delay = retryAfterMs !== undefined ? Math.min(retryAfterMs, policy.maxRetryAfterMs) : Math.random() * cap;
  await new Promise((resolve) => setTimeout(resolve, delay));
}

/** Failures worth another attempt: a retryable RegistryError, or a transient network error. */
export function isTransientError(error: unknown): boolean {
  if (error instanceof RegistryError) return error.retryable;
  const code = errorCode(error);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** A failed exchange as a RegistryError, retryable when the failure is transient. */
function networkError(error: unknown, context: string): RegistryError {
  if (error instanceof RegistryError) return error;
  const code = errorCode(error);
  return new RegistryError(`${context}: request failed (${code ?? 'network error'})`, {
    code,
    retryable: code !== undefined && TRANSIENT_CODES.has(code),
    cause: error,
  });
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** First value of a response header. */
export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Reads a body that must be small (manifests, JSON listings, errors); refuses to buffer more than
 * `limit` bytes or to take longer than `deadlineMs` in all (a trickle is retried like a stall).
 */
export async function readBody(
  res: HttpResponse,
  limit: number,
  context: string,
  deadlineMs = DEFAULT_HTTP_OPTIONS.smallBodyDeadlineMs,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(() => {
    const error = new RegistryError(`${context}: response body not complete after ${Math.round(deadlineMs / 1000)} s`, {
      code: 'BODY_DEADLINE',
      retryable: true,
    });
    res.body.destroy(error);
  }, deadlineMs);
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new RegistryError(`${context}: response larger than ${limit} bytes`);
      parts.push(chunk);
    }
  } catch (error) {
    res.body.destroy();
    throw networkError(error, context); // a reset or stall mid-body is as retryable as one before it
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(parts);
}

/** Frees the connection of a response whose body we do not need. */
export async function discard(res: HttpResponse): Promise<void> {
  await res.body.dump().catch(() => undefined);
}

/**
 * The error for an unexpected status, from the OCI error body `{errors:[{code,message}]}` when the
 * registry sent one. The registry's `detail` is left out and its `message` redacted: both can echo
 * request data (an Authorization header, a presigned URL).
 */
export async function errorFromResponse(res: HttpResponse, context: string): Promise<RegistryError> {
  const status = res.statusCode;
  let code: string | undefined;
  let message: string | undefined;
  try {
    const parsed = JSON.parse((await readBody(res, 64 * 1024, context)).toString('utf8')) as {
      errors?: { code?: unknown; message?: unknown }[];
    };
    const first = parsed.errors?.[0];
    if (typeof first?.code === 'string') code = first.code;
    if (typeof first?.message === 'string') message = redact(first.message.slice(0, 300));
  } catch {
    await discard(res);
  }
  const why = `${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 404 || code?.endsWith('_UNKNOWN')) return new RegistryNotFoundError(`${context}: not found (${why})`, { status, code });
  if (status === 401 || status === 403)
    return new RegistryAuthError(`${context}: access denied (${why}); check the registry credentials`, { status, code });
  if (status === 429 || (status >= 500 && status !== 501)) {
    return new RegistryError(`${context}: registry unavailable (${why})`, { status, code, retryable: true, retryAfterMs: retryAfter(res) });
  }
  return new RegistryError(`${context}: request refused (${why})`, { status, code });
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
function retryAfter(res: HttpResponse): number | undefined {
  const value = header(res, 'retry-after');
  if (!value) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Plain http would expose credentials and content to the network, so it is allowed only to loopback
 * or when the operator explicitly said `insecure`. Applied to the registry, token realms and redirects.
 */
export function assertTransport(url: URL, insecure: boolean, what: string): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && (insecure || isLoopback(url.hostname))) return;
  throw new RegistryConfigError(
    url.protocol === 'http:'
      ? `${what} uses plain http to ${url.host}; only loopback hosts may use http unless insecure is set`
      : `${what} has unsupported scheme ${url.protocol} (use https://)`,
  );
}
