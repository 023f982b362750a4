// The backup/restore workflow as a Step Functions state graph (JSONPath). The EcrBackup construct
// (infra/ecr-backup.ts) supplies the resources; this file only wires states.
//
//   List images ─▶ Sharded listing? ─(backup)─▶ List shards (DISTRIBUTED Map: List shard) ─▶ Merge shards ─┐
//                        └─(restore)──────────────────────────────────────────────────────────────────┤
//                 ┌───────────────────────────────────────────────────────────────────────────────────┘
//                 ▼
//                Anything to copy? ─(itemCount = 0)──────────────────────────────▶ Summarize run
//                        └─(otherwise)─▶ Copy batches (DISTRIBUTED Map) ─┬─(done)───▶ Summarize run
//                                          per batch:                    └─(Catch)──▶ Summarize run
//                                          Backup or restore? ─▶ Back up batch | Restore batch
//                                                                   └─(Catch)─▶ Record batch failure
//
// List images' Catch (infrastructure errors only: timeout, runtime, throttling, access denied)
// ─▶ Notify listing failure (SNS) ─▶ Listing failed (Fail, with the caught Error and Cause). An
// invalid input is not caught: it fails the execution at once, naming the field.
//
// With a prune step (EcrBackup `prune` prop), Summarize run keeps the state (its output goes to
// $.summary) and continues: Prune after backup? ─(mode = backup)─▶ Prune store | otherwise ─▶ Done.
//
// A backup's `List images` only plans the listing (listing = the shard plan); `Merge shards` then
// replaces the state with the listing of the whole run. List shards' and Merge shards' failures
// go to Notify listing failure too.
//
// State data: `List images` replaces the execution input with `{runId, mode, listing}`; the Map
// discards its own output (ResultPath null) so that stays intact, its Catch adds `mapFailed`; the
// summary Lambda therefore receives exactly `{runId, mode, listing, mapFailed?}` as `$`.
import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ENV } from '../schema/environment.ts';
import { MAP_LABEL, STATE } from '../schema/workflow-states.ts';
import { StoreResultWriter } from './map-results.ts';

/** Errors on which starting a Fargate task is retried: capacity shortages and throttling. */
const ECS_RETRY_ERRORS = [
  // "Capacity is unavailable at this time" and other RunTask failures surface as this one.
  'ECS.AmazonECSException',
  'ECS.ServerException',
  // RunTask's own "failures" (e.g. RESOURCE:ENI, AGENT) and transient ECS faults surface as this one.
  'AmazonECS.Unknown',
  'ECS.LimitExceededException',
  'ECS.ThrottlingException',
  'ThrottlingException',
];

interface WorkerLaunch {
  readonly taskDefinition: ecs.TaskDefinition;
  readonly container: ecs.ContainerDefinition;
}

export interface DefinitionProps {
  readonly listFunction: lambda.IFunction;
  readonly summarizeFunction: lambda.IFunction;
  /**
   * Optional retention step: after a backup run is summarized, this Lambda prunes the store and
   * returns the summary with `prune` counts added (the execution's output).
   */
  readonly pruneFunction?: lambda.IFunction;
  readonly cluster: ecs.ICluster;
  readonly backup: WorkerLaunch;
  readonly restore: WorkerLaunch;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  /** Fargate tasks running at once. */
  readonly maxConcurrency: number;
  /** Map-level tolerance: percentage of batches whose child execution may fail outright. */
  readonly toleratedFailurePercentage: number;
  /** Upper bound for one batch's Fargate task. */
  readonly taskTimeout: Duration;
  /** Where a listing failure is announced (the stack's notification topic). */
  readonly topic: sns.ITopic;
  /** Key prefix (store prefix + runs/map-results) of the distributed Map's ResultWriter. */
  readonly mapResultsPrefix: string;
  /** Listing shards listed at once (`List shards` MaxConcurrency). */
  readonly listingConcurrency: number;
}

/**
 * Errors of the listing state that are not the input's fault: a timeout, a runtime crash (a module
 * missing from the bundle), Lambda service faults, throttling beyond the retries, access denied.
 */
export const LISTING_INFRASTRUCTURE_ERRORS = [
  'States.Timeout',
  'Sandbox.Timedout',
  'Runtime.ExitError',
  'Runtime.ImportModuleError',
  'Runtime.Unknown',
  'Lambda.Unknown',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'AccessDenied',
  'AccessDeniedException',
];

/** Every Lambda state's retry when Lambda throttles its invocation. */
const LAMBDA_THROTTLED_RETRY: sfn.RetryProps = {
  errors: ['Lambda.TooManyRequestsException'],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxAttempts: 5,
  jitterStrategy: sfn.JitterType.FULL,
};

export function buildDefinition(parent: Construct, props: DefinitionProps): sfn.IChainable {
  const scope = new Construct(parent, 'Workflow');
  const list = new tasks.LambdaInvoke(scope, 'ListImages', {
    stateName: STATE.list,
    lambdaFunction: props.listFunction,
    payload: sfn.TaskInput.fromObject({
      executionId: sfn.JsonPath.executionId,
      input: sfn.JsonPath.objectAt('$'),
    }),
    // The ListingOutput carries counts and keys only; the items stay in S3.
    resultSelector: {
      'runId.$': '$.Payload.runId',
      'mode.$': '$.Payload.mode',
      'listing.$': '$.Payload',
    },
    resultPath: '$',
    retryOnServiceExceptions: true,
  });
  // An invalid input is not caught: it fails the execution at once with the error naming the field.
  // Anything else still notifies (there is no report without a listing), then fails the execution.
  const listingFailed = new sfn.Fail(scope, 'ListingFailed', {
    stateName: STATE.listingFailed,
    errorPath: '$.listFailed.Error',
    causePath: '$.listFailed.Cause',
  });
  const notifyListingFailed = new tasks.SnsPublish(scope, 'NotifyListingFailed', {
    stateName: STATE.notifyListingFailed,
    topic: props.topic,
    subject: 'ecr-backup: a run failed before any work (listing)',
    message: sfn.TaskInput.fromText(
      sfn.JsonPath.format(
        'Execution {} failed while listing images: {}: {}',
        sfn.JsonPath.executionId,
        sfn.JsonPath.stringAt('$.listFailed.Error'),
        sfn.JsonPath.stringAt('$.listFailed.Cause'),
      ),
    ),
    resultPath: sfn.JsonPath.DISCARD,
  });
  notifyListingFailed.addCatch(listingFailed, { errors: [sfn.Errors.ALL], resultPath: '$.notifyFailed' });
  notifyListingFailed.next(listingFailed);

  const summarize = new tasks.LambdaInvoke(scope, 'SummarizeRun', {
    stateName: STATE.summarize,
    lambdaFunction: props.summarizeFunction,
    payload: sfn.TaskInput.fromJsonPathAt('$'),
    // The execution's output is the report; a throw (failures over tolerance) fails the execution.
    // With a prune step the summary goes to $.summary, so the state keeps `mode` for the choice.
    ...(props.pruneFunction ? { resultSelector: { 'Payload.$': '$.Payload' }, resultPath: '$.summary' } : { outputPath: '$.Payload' }),
  });
  if (props.pruneFunction) {
    const prune = new tasks.LambdaInvoke(scope, 'PruneStore', {
      stateName: STATE.prune,
      lambdaFunction: props.pruneFunction,
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.stringAt('$.runId'),
        summary: sfn.JsonPath.objectAt('$.summary.Payload'),
        input: sfn.JsonPath.objectAt('$$.Execution.Input'),
      }),
      outputPath: '$.Payload',
    });
    prune.addRetry(LAMBDA_THROTTLED_RETRY);
    summarize.next(
      new sfn.Choice(scope, 'PruneAfterBackup', { stateName: STATE.pruneAfterBackup })
        .when(sfn.Condition.stringEquals('$.mode', 'backup'), prune)
        .otherwise(new sfn.Pass(scope, 'Done', { stateName: STATE.done, outputPath: '$.summary.Payload' })),
    );
  }
  for (const fn of [list, summarize]) fn.addRetry(LAMBDA_THROTTLED_RETRY);
  list.addCatch(notifyListingFailed, { errors: LISTING_INFRASTRUCTURE_ERRORS, resultPath: '$.listFailed' });

  const batchFailed = new sfn.Pass(scope, 'RecordBatchFailure', {
    stateName: STATE.batchFailed,
    // Not fatal by itself: the batch's images have no result files, so the summary counts them as
    // failed and applies the tolerance; this record keeps the cause visible in the map run.
    parameters: {
      'batchKey.$': '$.batchKey',
      failed: true,
      'error.$': '$.failure.Error',
      'cause.$': '$.failure.Cause',
    },
  });

  const runBatch = (id: string, stateName: string, launch: WorkerLaunch) =>
    new tasks.EcsRunTask(scope, id, {
      stateName,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      cluster: props.cluster,
      taskDefinition: launch.taskDefinition,
      launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
      subnets: props.subnets,
      securityGroups: props.securityGroups,
      assignPublicIp: false,
      // A reference to the batch file, never the items: container overrides stop at 8 KiB.
      containerOverrides: [
        {
          containerDefinition: launch.container,
          environment: [{ name: ENV.BATCH_KEY, value: sfn.JsonPath.stringAt('$.batchKey') }],
        },
      ],
      taskTimeout: sfn.Timeout.duration(props.taskTimeout),
      // DescribeTasks' output is large and unused (results are in S3): the item's output is its input.
      resultPath: sfn.JsonPath.DISCARD,
    })
      .addRetry({
        errors: ECS_RETRY_ERRORS,
        interval: Duration.seconds(20),
        backoffRate: 2,
        maxAttempts: 6,
        maxDelay: Duration.minutes(5),
        jitterStrategy: sfn.JitterType.FULL,
      })
      .addCatch(batchFailed, { errors: [sfn.Errors.ALL], resultPath: '$.failure' });

  const backupBatch = runBatch('BackUpBatch', STATE.backup, props.backup);
  const restoreBatch = runBatch('RestoreBatch', STATE.restore, props.restore);

  // Two task definitions with separate task roles: the backup role cannot push to ECR, the restore
  // role can. The mode is fixed per execution; the Choice routes every batch the same way.
  const processor = new sfn.Choice(scope, 'BackupOrRestore', { stateName: STATE.backupOrRestore })
    .when(sfn.Condition.stringEquals('$.mode', 'restore'), restoreBatch)
    .otherwise(backupBatch);

  const map = new sfn.DistributedMap(scope, 'CopyBatches', {
    stateName: STATE.map,
    // The listing Lambda already grouped the images into batches sized by image bytes and count and
    // wrote them to S3; each element of the JSON array at batchesKey is one BatchRef = one Fargate
    // task. Step Functions' ItemBatcher is not used: it can only size batches by JSON bytes and item
    // count, not by the data volume a batch moves, and each batch would then travel inline in the
    // child execution input (and could not be handed to ECS, whose overrides stop at 8 KiB).
    itemReader: new sfn.S3JsonItemReader({
      bucketNamePath: sfn.JsonPath.stringAt('$.listing.bucket'),
      key: sfn.JsonPath.stringAt('$.listing.batchesKey'),
    }),
    itemSelector: {
      'runId.$': '$.runId',
      'mode.$': '$.mode',
      'batchKey.$': '$$.Map.Item.Value.batchKey',
      'index.$': '$$.Map.Item.Value.index',
    },
    maxConcurrency: props.maxConcurrency,
    toleratedFailurePercentage: props.toleratedFailurePercentage,
    label: MAP_LABEL.copyBatches,
    // Per-image results live in S3 (runs/<runId>/results/). The children's outputs go to S3 too
    // (see map-results.ts): collected inline they would grow with the batch count past 256 KiB.
    resultWriterV2: new StoreResultWriter(sfn.JsonPath.stringAt('$.listing.bucket'), props.mapResultsPrefix),
    resultPath: sfn.JsonPath.DISCARD,
  });
  map.itemProcessor(processor);
  // Tolerated-failure threshold exceeded (States.ExceedToleratedFailureThreshold) or any other map
  // failure: still summarize, so the report, metrics and notification go out; the summary then fails
  // the execution with the counts.
  map.addCatch(summarize, { errors: [sfn.Errors.ALL], resultPath: '$.mapFailed' });
  map.next(summarize);

  const anythingToCopy = new sfn.Choice(scope, 'AnythingToCopy', { stateName: STATE.anythingToCopy })
    .when(sfn.Condition.numberEquals('$.listing.itemCount', 0), summarize)
    .otherwise(map);
  return list.next(
    new sfn.Choice(scope, 'ShardedListing', { stateName: STATE.shardedListing })
      .when(sfn.Condition.isPresent('$.listing.shardsKey'), shardedListing(scope, props, notifyListingFailed).next(anythingToCopy))
      .otherwise(anythingToCopy),
  );
}

/**
 * A backup's listing after `List images` planned it: `List shards` (a DISTRIBUTED Map over the
 * shard list the plan wrote; each child lists one shard with the listing function and writes its
 * outcome to S3) and `Merge shards` (the same function, turning the outcomes into batches). Its
 * output replaces the state with `{runId, mode, listing}` exactly as an unsharded listing does.
 * A shard that still fails after its retries fails the listing: the run is announced and ends
 * without work rather than backing up an arbitrary part of the organisation.
 */
function shardedListing(scope: Construct, props: DefinitionProps, notifyListingFailed: sfn.IChainable): sfn.Chain {
  const listShard = new tasks.LambdaInvoke(scope, 'ListShard', {
    stateName: STATE.listShard,
    lambdaFunction: props.listFunction,
    payload: sfn.TaskInput.fromJsonPathAt('$'),
    // Counts only: the shard's items are in its outcome object.
    outputPath: '$.Payload',
    retryOnServiceExceptions: true,
  });
  const shards = new sfn.DistributedMap(scope, 'ListShards', {
    stateName: STATE.listShards,
    itemReader: new sfn.S3JsonItemReader({
      bucketNamePath: sfn.JsonPath.stringAt('$.listing.bucket'),
      key: sfn.JsonPath.stringAt('$.listing.shardsKey'),
    }),
    itemSelector: {
      listShard: {
        'runId.$': '$.runId',
        'shardKey.$': '$$.Map.Item.Value.shardKey',
        'index.$': '$$.Map.Item.Value.index',
      },
    },
    maxConcurrency: props.listingConcurrency,
    label: MAP_LABEL.listShards,
    resultWriterV2: new StoreResultWriter(sfn.JsonPath.stringAt('$.listing.bucket'), props.mapResultsPrefix),
    resultPath: sfn.JsonPath.DISCARD,
  });
  shards.itemProcessor(listShard);
  shards.addCatch(notifyListingFailed, { errors: [sfn.Errors.ALL], resultPath: '$.listFailed' });
  const merge = new tasks.LambdaInvoke(scope, 'MergeShards', {
    stateName: STATE.mergeShards,
    lambdaFunction: props.listFunction,
    payload: sfn.TaskInput.fromObject({ mergeShards: sfn.JsonPath.objectAt('$.listing') }),
    resultSelector: {
      'runId.$': '$.Payload.runId',
      'mode.$': '$.Payload.mode',
      'listing.$': '$.Payload',
    },
    resultPath: '$',
    retryOnServiceExceptions: true,
  });
  merge.addCatch(notifyListingFailed, { errors: [sfn.Errors.ALL], resultPath: '$.listFailed' });
  for (const fn of [listShard, merge]) fn.addRetry(LAMBDA_THROTTLED_RETRY);
  return shards.next(merge);
}
