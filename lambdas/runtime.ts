// What every Lambda handler shares for the life of its container: Powertools Logger (the core's
// log lines go through it, so each carries the request id and cold start; LOG_LEVEL sets the level),
// EMF metrics, and SDK clients and stores built once and reused across invocations (keep-alive
// connections, no repeated credential lookups).
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { setLogSink } from '../core/log.ts';
import { redact } from '../core/redact.ts';
import { BackupStore, type BackupStoreOptions } from '../core/store/backup-store.ts';
import { openStore } from '../core/store/url.ts';

const logger = new Logger({
  serviceName: 'ecr-backup',
  // Every string in a line is redacted, like the core's own JSON lines.
  jsonReplacerFn: (_key, value) => (typeof value === 'string' ? redact(value) : value),
});
setLogSink((level, message, fields) => logger[level](message, fields));

/** Adds the invocation's context (request id, cold start) to the log lines `handler` writes. */
export function withLambdaContext<E, R>(handler: (event: E) => Promise<R>): (event: E, context?: Context) => Promise<R> {
  return (event, context) => {
    // Local runs (the tests' workflow) call handlers without a context.
    if (context) logger.addContext(context);
    return handler(event);
  };
}

/**
 * The SDK reads its configuration from these variables; a process that runs handlers under several
 * configurations (the tests' local workflow) gets a client or store per configuration, a Lambda one.
 */
const SDK_ENVIRONMENT = ['AWS_REGION', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID'];

/** `create(key)` once per key and SDK configuration for the container's life. */
export function perContainer<V>(create: (key: string) => V): (key: string) => V {
  const made = new Map<string, V>();
  return (key) => {
    const id = JSON.stringify([key, ...SDK_ENVIRONMENT.map((name) => process.env[name] ?? '')]);
    let value = made.get(id);
    if (value === undefined) {
      value = create(key);
      made.set(id, value);
    }
    return value;
  };
}

/**
 * EMF metrics in `namespace`, written to the function's log (CloudWatch extracts them: no
 * PutMetricData call or grant). Without Powertools' default `service` dimension, so the metrics keep
 * the dimensions the dashboard and alarms select on.
 */
export const metricsIn = perContainer((namespace) => {
  const metrics = new Metrics({ namespace });
  metrics.clearDefaultDimensions();
  return metrics;
});

const objectStoreAt = perContainer((url) => openStore(url));

/**
 * The backup store at `url`: its objects (and S3 client) once per container, the BackupStore over
 * them per invocation, since it caches what one run saw (records, blob presence).
 */
export function backupStoreAt(url: string, options: BackupStoreOptions = {}): BackupStore {
  return new BackupStore(objectStoreAt(url), options);
}
