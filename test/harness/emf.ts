// The EMF metrics (CloudWatch Embedded Metric Format) a Lambda run in this process writes to stdout:
// CloudWatch turns these log lines into metrics, so they are what the dashboard and alarms see.
import { vi } from 'vitest';

export interface EmfMetric {
  namespace: string;
  name: string;
  value: unknown;
  /** The metric's dimensions and their values (empty: the metric without dimensions). */
  dimensions: Record<string, unknown>;
}

/** Starts recording stdout's EMF lines (still passing them through); `stop` ends it. */
export function captureEmf(): { metrics(): EmfMetric[]; stop(): void } {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(...String(chunk).split('\n'));
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write);
  return {
    metrics: () => lines.filter((line) => line.startsWith('{"_aws"')).flatMap(emfMetrics),
    stop: () => spy.mockRestore(),
  };
}

interface EmfObject {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [field: string]: unknown;
}

function emfMetrics(line: string): EmfMetric[] {
  const emf = JSON.parse(line) as EmfObject;
  return emf._aws.CloudWatchMetrics.flatMap((directive) =>
    directive.Metrics.flatMap((metric) =>
      directive.Dimensions.map((set) => ({
        namespace: directive.Namespace,
        name: metric.Name,
        value: emf[metric.Name],
        dimensions: Object.fromEntries(set.map((name) => [name, emf[name]])),
      })),
    ),
  );
}
