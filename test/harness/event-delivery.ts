// Emulated EventBridge -> SQS -> Lambda delivery (moto stores rules but never fires them): events
// are matched against the synthesized rule's EventPattern, wrapped in SQS records as EventBridge's
// SQS target does (the event JSON is the message body), and cut into the batches the event source
// mapping's BatchSize allows. The batching window is not emulated: a burst is delivered at once.
import { randomUUID } from 'node:crypto';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { CfnTemplate } from './synthesized-workflow.ts';

type Pattern = { [key: string]: Pattern | (string | { wildcard: string } | { prefix: string })[] };

/** True when `event` matches an EventBridge pattern (the subset the stack uses: literals, wildcard, prefix). */
function matchesPattern(pattern: Pattern, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([key, expected]) => {
    const value = event[key];
    if (!Array.isArray(expected))
      return typeof value === 'object' && value !== null && matchesPattern(expected, value as Record<string, unknown>);
    if (typeof value !== 'string') return false;
    return expected.some((e) => {
      if (typeof e === 'string') return e === value;
      if ('prefix' in e) return value.startsWith(e.prefix);
      const regex = new RegExp(
        `^${e.wildcard
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      );
      return regex.test(value);
    });
  });
}

/** An ECR "ECR Image Action" event as ECR sends it to EventBridge. */
export function ecrPushEvent(repository: string, tag: string | undefined, digest: string, result = 'SUCCESS', action = 'PUSH') {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: {
      result,
      'repository-name': repository,
      'image-digest': digest,
      'action-type': action,
      ...(tag !== undefined ? { 'image-tag': tag } : {}),
    },
  };
}

/** The rule's pattern, the event source mapping's batch size and the queue ARN, from the template. */
function pushPipeline(template: CfnTemplate): { pattern: Pattern; batchSize: number; windowSeconds: number } {
  const rule = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties?.EventPattern ?? {}).includes('aws.ecr'),
  );
  const mapping = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping');
  if (!rule || !mapping) throw new Error('the template has no push rule or event source mapping (pushBackups prop not set?)');
  return {
    pattern: rule.Properties!.EventPattern as Pattern,
    batchSize: Number(mapping.Properties!.BatchSize),
    windowSeconds: Number(mapping.Properties!.MaximumBatchingWindowInSeconds),
  };
}

/** What the queue hands the Lambda for these events: the matching ones, as SQS batches of at most batchSize. */
export function deliverToQueue(template: CfnTemplate, events: Record<string, unknown>[]): SQSEvent[] {
  const { pattern, batchSize } = pushPipeline(template);
  const records: SQSRecord[] = events
    .filter((e) => matchesPattern(pattern, e))
    .map((e) => {
      const body = JSON.stringify(e);
      return {
        messageId: randomUUID(),
        receiptHandle: randomUUID(),
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(Date.now()),
          SenderId: 'events',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:pushes',
        awsRegion: 'us-east-1',
      };
    });
  const batches: SQSEvent[] = [];
  for (let i = 0; i < records.length; i += batchSize) batches.push({ Records: records.slice(i, i + batchSize) });
  return batches;
}
