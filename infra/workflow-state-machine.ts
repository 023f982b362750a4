// The workflow's state machine (definition from state-machine/definition.ts): its log group, the role
// statements CDK cannot derive (batch lists, map results), and the failed/timed-out execution alarms.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { buildDefinition, type DefinitionProps } from '../state-machine/definition.ts';
import { MAP_RESULTS_AREA } from '../state-machine/map-results.ts';
import { runKeys } from '../schema/contract.ts';
import { shardKeys } from '../schema/listing-shards.ts';
import type { StoreBucket } from './store-access.ts';

interface WorkflowStateMachineProps {
  definition: Omit<DefinitionProps, 'topic' | 'mapResultsPrefix'>;
  store: StoreBucket;
  retention: logs.RetentionDays;
  topic: sns.Topic;
  topicKey: kms.IKey;
}

export function createWorkflowStateMachine(scope: Construct, w: WorkflowStateMachineProps): sfn.StateMachine {
  const { bucket, prefix, encryptionKey } = w.store;
  const stack = Stack.of(scope);
  // Step Functions delivers logs through CloudWatch Logs vended delivery, whose resource policy has
  // a size limit that `/aws/vendedlogs/` names avoid (AWS's documented prefix for these groups).
  const sfnLogs = new logs.LogGroup(scope, 'StateMachineLogs', {
    logGroupName: `/aws/vendedlogs/states/${stack.stackName}-${scope.node.id}`,
    retention: w.retention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const stateMachine = new sfn.StateMachine(scope, 'StateMachine', {
    stateMachineType: sfn.StateMachineType.STANDARD,
    definitionBody: sfn.DefinitionBody.fromChainable(
      buildDefinition(scope, { ...w.definition, topic: w.topic, mapResultsPrefix: `${prefix}${MAP_RESULTS_AREA}` }),
    ),
    timeout: Duration.hours(48),
    tracingEnabled: true,
    // States' inputs and outputs stay out of the logs: they name repositories, tags and run keys.
    logs: { destination: sfnLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
  });
  // The distributed Map's ItemReader reads the run's batch list (bucket/key come from the listing
  // output, so CDK cannot derive this statement itself).
  stateMachine.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'ReadBatchList',
      actions: ['s3:GetObject'],
      resources: [
        bucket.arnForObjects(`${prefix}${runKeys.batches('*')}`),
        // ...and the listing's shard list (List shards).
        bucket.arnForObjects(`${prefix}${shardKeys.list('*')}`),
      ],
    }),
  );
  // ...and its ResultWriter writes the children's outputs (not the Map's state) under runs/map-results/.
  stateMachine.addToRolePolicy(
    new iam.PolicyStatement({
      sid: 'WriteMapResults',
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resources: [bucket.arnForObjects(`${prefix}${MAP_RESULTS_AREA}/*`)],
    }),
  );
  if (encryptionKey) {
    stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DecryptBatchList',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [encryptionKey.keyArn],
      }),
    );
  }
  // A listing failure (e.g. a Lambda timeout) is published before the execution fails.
  stateMachine.addToRolePolicy(
    new iam.PolicyStatement({ sid: 'NotifyEncrypted', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [w.topicKey.keyArn] }),
  );

  for (const [id, metric] of [
    ['ExecutionsFailedAlarm', stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' })],
    ['ExecutionsTimedOutAlarm', stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' })],
  ] as const) {
    const alarm = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: `ecr-backup: a backup or restore execution ${id === 'ExecutionsFailedAlarm' ? 'failed' : 'timed out'}`,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(w.topic));
  }
  return stateMachine;
}
