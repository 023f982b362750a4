// ECR control-plane calls at scale: a client-side rate limit (requests started per second, shared by
// every call of one endpoint) and retries of throttling errors with exponential backoff and jitter.
// The SDK client itself also runs in adaptive retry mode; this layer keeps a large listing (5,000
// repositories, DescribeImages pages, settings reads) under the account's API rate instead of
// relying on errors, and turns a throttled repository into a slower one rather than a failed run.
export interface EcrThrottleOptions {
  /** Requests started per second across the endpoint (default 50; an assumption: check the ECR API rate quotas in Service Quotas). */
  ratePerSecond?: number;
  /** Attempts per call when ECR throttles (default 8). */
  maxAttempts?: number;
  /** First backoff in ms, doubled per attempt, with full jitter (default 200). */
  baseDelayMs?: number;
}

const THROTTLING = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'Throttling',
  'ServiceUnavailableException',
]);

export function isThrottling(error: unknown): boolean {
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  return (typeof e?.name === 'string' && THROTTLING.has(e.name)) || e?.$metadata?.httpStatusCode === 429;
}

type Sender = { send: (command: never) => Promise<unknown> };

/** Wraps a client's `send` with the rate limit and throttling retries; the wrapper has the client's type. */
export function throttledClient<C extends Sender>(client: C, options: EcrThrottleOptions = {}): C {
  const interval = 1000 / (options.ratePerSecond ?? 50);
  const maxAttempts = options.maxAttempts ?? 8;
  const baseDelay = options.baseDelayMs ?? 200;
  let nextSlot = 0;
  const slot = async () => {
    const now = Date.now();
    const at = Math.max(now, nextSlot);
    nextSlot = at + interval;
    if (at > now) await sleep(at - now);
  };
  const send = async (command: never) => {
    for (let attempt = 1; ; attempt++) {
      await slot();
      try {
        return await client.send(command);
      } catch (error) {
        if (!isThrottling(error) || attempt >= maxAttempts) throw error;
        await sleep(Math.random() * baseDelay * 2 ** (attempt - 1));
      }
    }
  };
  return new Proxy(client, { get: (target, property, receiver) => (property === 'send' ? send : Reflect.get(target, property, receiver)) });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
