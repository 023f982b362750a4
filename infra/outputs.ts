// The stack outputs `ecr-backup run/runs/doctor` and operators read (<id>StateMachineArn, <id>StoreUrl,
// the task role ARNs, the topic), and the tag that finds the state machine by stack name.
import { CfnOutput, Stack, Tags } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { STACK_NAME_TAG } from '../schema/contract.ts';

interface WorkflowOutputs {
  stateMachine: sfn.StateMachine;
  storeUrl: string;
  backupTaskRole: iam.IRole;
  restoreTaskRole: iam.IRole;
  topic: sns.Topic;
}

export function addWorkflowOutputs(scope: Construct, o: WorkflowOutputs): void {
  const outputPrefix = scope.node.id.replace(/[^A-Za-z0-9]/g, '');
  // `ecr-backup run --stack NAME` finds the state machine by this tag, with Step Functions calls alone.
  Tags.of(o.stateMachine).add(STACK_NAME_TAG, Stack.of(scope).stackName);
  new CfnOutput(scope, 'StateMachineArn', {
    key: `${outputPrefix}StateMachineArn`,
    description: 'ecr-backup workflow state machine',
    value: o.stateMachine.stateMachineArn,
  });
  new CfnOutput(scope, 'StoreUrl', {
    key: `${outputPrefix}StoreUrl`,
    description: 'ecr-backup store (s3://bucket/prefix)',
    value: o.storeUrl,
  });
  // For `ecr-backup doctor` and for the trust policy of a cross-account restore target role.
  new CfnOutput(scope, 'BackupTaskRoleArn', {
    key: `${outputPrefix}BackupTaskRoleArn`,
    description: 'ecr-backup backup task role',
    value: o.backupTaskRole.roleArn,
  });
  new CfnOutput(scope, 'RestoreTaskRoleArn', {
    key: `${outputPrefix}RestoreTaskRoleArn`,
    description: 'ecr-backup restore task role (trusted by cross-account target roles)',
    value: o.restoreTaskRole.roleArn,
  });
  new CfnOutput(scope, 'TopicArn', {
    key: `${outputPrefix}TopicArn`,
    description: 'ecr-backup notifications',
    value: o.topic.topicArn,
  });
}
