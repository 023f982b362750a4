// Event-driven backups (EcrBackup `pushBackups` prop): ECR push events -> EventBridge rule -> SQS
// queue (batching window) -> the push Lambda (lambdas/start-on-push.ts, reserved
// concurrency 1) -> one backup execution per batch with exactly the pushed images. The schedule
// stays as the safety net; see the README ("Backups within minutes of a push") for the RPO bound.
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { MAX_PUSHED_IMAGES } from '../schema/contract.ts';
import { PUSH_ENV } from '../schema/environment.ts';
import type { LambdaName } from './assets.ts';
import { acknowledge } from './nag.ts';

export interface EcrBackupPushBackups {
  /** How long the queue gathers pushes before handing a batch to the Lambda (1-300 s). @default 30 */
  readonly batchWindowSeconds?: number;
  /** Most pushes in one batch, hence in one execution (10-1000). @default 1000 */
  readonly batchSize?: number;
  /** Executions (scheduled ones included) allowed to run at once; more pushes wait in the queue. @default 3 */
  readonly maxRunningExecutions?: number;
}

export interface PushBackupsProps extends EcrBackupPushBackups {
  readonly stateMachine: sfn.IStateMachine;
  readonly repositories: readonly string[];
  /** Builds the Lambda (EcrBackup's bundling, role and log group). */
  readonly makeFunction: (id: string, name: LambdaName, timeout: Duration, environment: Record<string, string>) => lambda.Function;
}

/** The EventBridge pattern's repository filter: globs as wildcards (a superset; the Lambda applies the glob itself). */
function repositoryWildcards(globs: readonly string[]): string[] {
  return [...new Set(globs.map((g) => g.replace(/\*\*+/g, '*').replace(/\?/g, '*')))];
}

export class PushBackups extends Construct {
  readonly rule: events.Rule;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: PushBackupsProps) {
    super(scope, id);
    const window = props.batchWindowSeconds ?? 30;
    const batchSize = props.batchSize ?? 1000;
    const maxRunning = props.maxRunningExecutions ?? 3;
    const where = `EcrBackup ${this.node.path}`;
    if (!(Number.isInteger(window) && window >= 1 && window <= 300))
      throw new Error(`${where}: batchWindowSeconds must be an integer within 1..300`);
    if (!(Number.isInteger(batchSize) && batchSize >= 10 && batchSize <= MAX_PUSHED_IMAGES))
      throw new Error(`${where}: batchSize must be an integer within 10..${MAX_PUSHED_IMAGES}`);
    if (!(Number.isInteger(maxRunning) && maxRunning >= 1)) throw new Error(`${where}: maxRunningExecutions must be a positive integer`);

    const timeout = Duration.seconds(30);
    this.function = props.makeFunction('StartOnPush', 'start-on-push', timeout, {
      [PUSH_ENV.STATE_MACHINE_ARN]: props.stateMachine.stateMachineArn,
      [PUSH_ENV.PROTECTED_REPOSITORIES]: JSON.stringify(props.repositories),
      [PUSH_ENV.MAX_RUNNING_EXECUTIONS]: String(maxRunning),
    });
    // One batch at a time becomes an execution: the burst bound does not depend on Lambda scaling.
    (this.function.node.defaultChild as { reservedConcurrentExecutions?: number }).reservedConcurrentExecutions = 1;
    props.stateMachine.grantStartExecution(this.function);
    this.function.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'CountRunning', actions: ['states:ListExecutions'], resources: [props.stateMachine.stateMachineArn] }),
    );

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, 'AwsSolutions-SQS3', 'This is the dead-letter queue of the push queue.');
    this.queue = new sqs.Queue(this, 'Pushes', {
      // SQS-managed encryption: EventBridge can send to it without a key policy.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's guidance for Lambda sources: six times the function timeout plus the batching window.
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6 + window),
      retentionPeriod: Duration.days(4),
      // A batch refused while executions run is retried after the visibility timeout; after this many
      // receives (~35 min with the defaults) it is parked in the dead-letter queue, and the schedule
      // still covers its images.
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 10 },
    });

    this.rule = new events.Rule(this, 'PushRule', {
      description: 'ecr-backup: successful pushes to protected repositories',
      eventPattern: {
        source: ['aws.ecr'],
        detailType: ['ECR Image Action'],
        detail: {
          'action-type': ['PUSH'],
          result: ['SUCCESS'],
          'repository-name': repositoryWildcards(props.repositories).flatMap((w) => (w.includes('*') ? events.Match.wildcard(w) : [w])),
        },
      },
      targets: [new eventsTargets.SqsQueue(this.queue)],
    });

    this.function.addEventSource(
      new lambdaEventSources.SqsEventSource(this.queue, {
        batchSize,
        maxBatchingWindow: Duration.seconds(window),
        reportBatchItemFailures: false,
      }),
    );
  }
}
